import {
  badRequest,
  deepClone,
  gone,
  notFound,
  OperationOutcomeError,
  type SearchRequest,
  type WithId,
} from '@medplum/core';
import { type CreateResourceOptions, MemoryRepository, type ReadHistoryOptions } from '@medplum/fhir-router';
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import { searchRecords } from './search.js';
import type { SearchIndexes } from './search-filter.js';
import { ReferenceIndex } from './search-index.js';

/** What the subscription emitter learns about each committed write. */
export interface ResourceChange {
  interaction: 'create' | 'update' | 'delete';
  resourceType: string;
  id: string;
  versionId: string;
  lastUpdated: string;
  /** The stored version (absent for deletes). Listeners must not mutate it. */
  resource?: Resource;
}

/** One current resource as the search code sees it; `ts` is meta.lastUpdated in epoch ms. */
export interface StoredRecord {
  readonly resource: WithId<Resource>;
  readonly ts: number;
  /** Write sequence number: unique, and increasing with `ts`, so it breaks ties in a stable way. */
  readonly seq: number;
  /** Search-parameter values evaluated once per stored version (see search.ts). */
  readonly cache: Map<string, unknown>;
}

type JournalEntry = {
  type: string;
  id: string;
  prior: StoredRecord | undefined;
  priorVersion: number | undefined;
  /** How many versions the resource's history had before this write (a rollback cuts it back). */
  priorHistory: number;
};

/** One version in a resource's history: what was stored, or a deletion (no resource). */
type HistoryVersion = { versionId: string; lastUpdated: string; resource?: WithId<Resource> };

// FHIR R4 id: [A-Za-z0-9\-\.]{1,64}
const ID_PATTERN = /^[A-Za-z0-9.-]{1,64}$/;

/**
 * MemoryRepository with what a test server needs on top: integer version ids ("1", "2", …, as HAPI
 * numbers them), meta.lastUpdated from one non-decreasing server clock (so `Bundle.meta.lastUpdated`
 * of a search is a safe watermark), transactions that roll back, change events for the subscription
 * emitter, and the record maps, write logs and reference index that search reads (search.ts) instead
 * of cloning every resource per page.
 *
 * All writes must be serialised by the caller (see SerialQueue): the transaction journal assumes no
 * other write interleaves with a transaction.
 */
export class SandboxRepository extends MemoryRepository {
  private readonly records = new Map<string, Map<string, StoredRecord>>();
  /** Per type, every stored version in write order (= lastUpdated order); see logOf(). */
  private readonly logs = new Map<string, StoredRecord[]>();
  private seq = 0;
  private readonly versions = new Map<string, number>();
  /**
   * Every version of every resource, deletions included, oldest first, for `_history` and vread.
   * MemoryRepository keeps versions too, but answers neither for a deleted resource (HAPI and Medplum
   * do: the bridge reads a deleted resource's last version to find the records it was part of), and
   * reverses its stored list in place on each `_history` read.
   */
  private readonly histories = new Map<string, HistoryVersion[]>();
  private readonly listeners = new Set<(change: ResourceChange) => void>();
  private journal: JournalEntry[] | undefined;
  private pending: ResourceChange[] | undefined;
  private lastTs = 0;
  private readonly references = new ReferenceIndex((resourceType) => this.recordsOf(resourceType));
  /**
   * What searches look up instead of scanning. put() and remove(), the only places that change which
   * version is current, keep it in step.
   */
  readonly indexes: SearchIndexes = { record: (type, id) => this.record(type, id), references: this.references };

  constructor(private readonly clock: () => number = Date.now) {
    super();
  }

  /** Server time in ms; never goes backwards, so a later write never gets an earlier lastUpdated. */
  now(): number {
    this.lastTs = Math.max(this.lastTs, this.clock());
    return this.lastTs;
  }

  onChange(listener: (change: ResourceChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Current resources of one type (insertion order); callers must not mutate them. */
  recordsOf(resourceType: string): Iterable<StoredRecord> {
    return this.records.get(resourceType)?.values() ?? [];
  }

  exists(resourceType: string, id: string): boolean {
    return this.records.get(resourceType)?.has(id) ?? false;
  }

  record(resourceType: string, id: string): StoredRecord | undefined {
    return this.records.get(resourceType)?.get(id);
  }

  /**
   * Versions of one type in write order, which is also (lastUpdated, seq) order because the clock
   * never goes backwards. Superseded and deleted versions stay in it: check `isCurrent`.
   */
  logOf(resourceType: string): readonly StoredRecord[] {
    return this.logs.get(resourceType) ?? [];
  }

  isCurrent(record: StoredRecord): boolean {
    return this.records.get(record.resource.resourceType)?.get(record.resource.id) === record;
  }

  override async createResource<T extends Resource>(resource: T, _options?: CreateResourceOptions): Promise<WithId<T>> {
    const copy = deepClone(resource);
    copy.id ??= this.generateId();
    if (!ID_PATTERN.test(copy.id)) {
      throw new OperationOutcomeError(badRequest('Invalid resource id', `${copy.resourceType}.id`));
    }
    const { resourceType, id } = copy as WithId<T>;
    const key = `${resourceType}/${id}`;
    const prior = this.records.get(resourceType)?.get(id);
    const priorVersion = this.versions.get(key);
    const ts = this.now();
    // Whatever the client sent in meta.versionId / meta.lastUpdated is ignored: the server owns them.
    copy.meta = { ...copy.meta, versionId: String((priorVersion ?? 0) + 1), lastUpdated: new Date(ts).toISOString() };
    // Everything from taking the timestamp to indexing the record happens without yielding, so no
    // search can run in between and see the clock past a write it did not see (the watermark rule).
    const saved = deepClone(copy) as WithId<T>;
    const storing = super.createResource(copy); // MemoryRepository stores synchronously inside
    this.versions.set(key, (priorVersion ?? 0) + 1);
    const record: StoredRecord = { resource: saved, ts, seq: ++this.seq, cache: new Map() };
    this.put(resourceType, record);
    this.append(resourceType, record);
    const priorHistory = this.remember(key, {
      versionId: saved.meta?.versionId ?? '',
      lastUpdated: saved.meta?.lastUpdated ?? '',
      resource: saved,
    });
    this.journal?.push({ type: resourceType, id, prior, priorVersion, priorHistory });
    this.announce({
      interaction: prior ? 'update' : 'create',
      resourceType,
      id,
      versionId: saved.meta?.versionId ?? '',
      lastUpdated: saved.meta?.lastUpdated ?? '',
      resource: saved,
    });
    await storing;
    return deepClone(saved);
  }

  override async deleteResource(resourceType: string, id: string): Promise<void> {
    const prior = this.records.get(resourceType)?.get(id);
    if (!prior) throw new OperationOutcomeError(notFound);
    const deleting = super.deleteResource(resourceType, id); // synchronous inside, as for create
    const key = `${resourceType}/${id}`;
    const priorVersion = this.versions.get(key);
    // A delete is a version of its own (HAPI does the same), so a re-create continues the numbering.
    const versionId = (priorVersion ?? 0) + 1;
    this.versions.set(key, versionId);
    this.remove(resourceType, id);
    const lastUpdated = new Date(this.now()).toISOString();
    const priorHistory = this.remember(key, { versionId: String(versionId), lastUpdated });
    this.journal?.push({ type: resourceType, id, prior, priorVersion, priorHistory });
    this.announce({ interaction: 'delete', resourceType, id, versionId: String(versionId), lastUpdated });
    await deleting;
  }

  /**
   * Instance history, newest first (as HAPI and Medplum order it), of a current or a deleted resource:
   * a deletion is an entry with a DELETE request and no resource. 404 only when the id never existed.
   */
  override async readHistory<T extends Resource>(
    resourceType: string,
    id: string,
    options?: ReadHistoryOptions,
  ): Promise<Bundle<WithId<T>>> {
    const versions = this.histories.get(`${resourceType}/${id}`);
    if (!versions) throw new OperationOutcomeError(notFound);
    const offset = options?.offset ?? 0;
    const newestFirst = [...versions].reverse();
    const page = newestFirst.slice(offset, options?.limit === undefined ? undefined : offset + options.limit);
    const url = `${resourceType}/${id}`;
    const entry = page.map((version, i): BundleEntry<WithId<T>> => {
      const response = { etag: `W/"${version.versionId}"`, lastModified: version.lastUpdated };
      if (!version.resource) return { request: { method: 'DELETE', url }, response: { ...response, status: '204' } };
      const first = offset + i === newestFirst.length - 1;
      return {
        resource: deepClone(version.resource) as WithId<T>,
        request: { method: first ? 'POST' : 'PUT', url: first ? resourceType : url },
        response: { ...response, status: first ? '201' : '200' },
      };
    });
    return { resourceType: 'Bundle', type: 'history', total: versions.length, ...(entry.length ? { entry } : {}) };
  }

  /** A version, also of a resource deleted since (HAPI's vread); the deletion's own version is gone (410). */
  override async readVersion<T extends Resource>(
    resourceType: string,
    id: string,
    versionId: string,
  ): Promise<WithId<T>> {
    const version = this.histories.get(`${resourceType}/${id}`)?.find((v) => v.versionId === versionId);
    if (!version) throw new OperationOutcomeError(notFound);
    if (!version.resource) throw new OperationOutcomeError(gone);
    return deepClone(version.resource) as WithId<T>;
  }

  override async search<T extends Resource>(searchRequest: SearchRequest<T>): Promise<Bundle<WithId<T>>> {
    const result = searchRecords(this, searchRequest);
    return {
      resourceType: 'Bundle',
      type: 'searchset',
      total: result.total,
      entry: result.page.map((record) => ({ resource: deepClone(record.resource) as WithId<T> })),
    };
  }

  /**
   * Runs a transaction: on failure every write made inside it is undone and its change events are
   * discarded; on success the events are announced.
   */
  override async withTransaction<TResult>(callback: (client: undefined) => Promise<TResult>): Promise<TResult> {
    if (this.journal) return callback(undefined); // nested (conditional create inside a transaction)
    const journal: JournalEntry[] = [];
    const pending: ResourceChange[] = [];
    this.journal = journal;
    this.pending = pending;
    try {
      const result = await callback(undefined);
      this.journal = undefined;
      this.pending = undefined;
      for (const change of pending) this.emit(change);
      return result;
    } catch (err) {
      this.journal = undefined;
      this.pending = undefined;
      await this.rollback(journal);
      throw err;
    }
  }

  private async rollback(journal: JournalEntry[]): Promise<void> {
    for (const entry of journal.reverse()) {
      const current = this.records.get(entry.type)?.get(entry.id);
      if (current) await super.deleteResource(entry.type, entry.id);
      this.remove(entry.type, entry.id);
      if (entry.prior) {
        // MemoryRepository keeps a versionId/lastUpdated it is given, so this restores the old version as it was.
        await super.createResource(entry.prior.resource);
        this.put(entry.type, entry.prior);
      }
      const key = `${entry.type}/${entry.id}`;
      if (entry.priorVersion === undefined) this.versions.delete(key);
      else this.versions.set(key, entry.priorVersion);
      if (entry.priorHistory === 0) this.histories.delete(key);
      else this.histories.get(key)?.splice(entry.priorHistory);
    }
  }

  private put(resourceType: string, record: StoredRecord): void {
    let byId = this.records.get(resourceType);
    if (!byId) {
      byId = new Map();
      this.records.set(resourceType, byId);
    }
    const prior = byId.get(record.resource.id);
    byId.set(record.resource.id, record);
    this.references.replaced(resourceType, prior, record);
  }

  private remove(resourceType: string, id: string): void {
    const byId = this.records.get(resourceType);
    const prior = byId?.get(id);
    if (!byId || !prior) return;
    byId.delete(id);
    this.references.replaced(resourceType, prior, undefined);
  }

  /** Adds a version to a resource's history; returns how many it had before. */
  private remember(key: string, version: HistoryVersion): number {
    return listIn(this.histories, key).push(version) - 1;
  }

  private append(resourceType: string, record: StoredRecord): void {
    const log = listIn(this.logs, resourceType);
    log.push(record);
    // Drop superseded versions once they outnumber current ones, so paging never wades through history.
    // Never during a transaction: a rollback puts prior versions back and they must still be in the log.
    const current = this.records.get(resourceType)?.size ?? 0;
    if (!this.journal && log.length > 2 * current + 1000) {
      this.logs.set(
        resourceType,
        log.filter((r) => this.isCurrent(r)),
      );
    }
  }

  private announce(change: ResourceChange): void {
    if (this.pending) this.pending.push(change);
    else this.emit(change);
  }

  private emit(change: ResourceChange): void {
    for (const listener of this.listeners) listener(change);
  }
}

/** The list a map holds under `key`, created empty the first time. */
function listIn<T>(map: Map<string, T[]>, key: string): T[] {
  let list = map.get(key);
  if (!list) {
    list = [];
    map.set(key, list);
  }
  return list;
}
