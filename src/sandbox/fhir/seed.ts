import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Resource } from '@medplum/fhirtypes';

type Json = Record<string, unknown>;

/** A resource to store with PUT semantics (keeps its id) or, without id, to create. */
export type SeedResource = Resource;

/** Reads every `*.json` file under a directory (recursively, in name order) or takes an array as is. */
export async function readSeed(seed: string | unknown[]): Promise<unknown[]> {
  if (Array.isArray(seed)) return seed;
  const files = await jsonFiles(seed);
  const items: unknown[] = [];
  for (const file of files) {
    try {
      items.push(JSON.parse(await readFile(file, 'utf8')));
    } catch (err) {
      throw new Error(`seed file ${file} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return items;
}

async function jsonFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true });
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await jsonFiles(path)));
    else if (entry.isFile() && entry.name.endsWith('.json')) out.push(path);
  }
  return out;
}

/**
 * Flattens seed items into resources. Bundles (transaction, batch, collection, document, …) are
 * unpacked; an entry without id takes it from its `urn:uuid:` or absolute fullUrl (or PUT url), and
 * references to other entries of the same Bundle by fullUrl are rewritten to `Type/id`, so a BFDR
 * document bundle lands as linked resources. Input is not mutated.
 */
export function unpackSeed(items: unknown[]): SeedResource[] {
  const out: SeedResource[] = [];
  items.forEach((item, index) => {
    const resource = asResource(item, `seed item ${index}`);
    if (resource.resourceType === 'Bundle') out.push(...unpackBundle(resource, `seed item ${index}`));
    else out.push(structuredClone(resource) as unknown as SeedResource);
  });
  return out;
}

function unpackBundle(bundle: Json, where: string): SeedResource[] {
  const entries = Array.isArray(bundle.entry) ? bundle.entry : [];
  const aliases = new Map<string, string>();
  const resources: Json[] = [];
  entries.forEach((entry: unknown, i) => {
    if (!isJson(entry) || entry.resource === undefined) return;
    const request = isJson(entry.request) ? entry.request : {};
    if (request.method === 'DELETE') return;
    const resource = structuredClone(asResource(entry.resource, `${where} entry ${i}`));
    const type = resource.resourceType as string;
    const fullUrl = typeof entry.fullUrl === 'string' ? entry.fullUrl : undefined;
    resource.id ??=
      idFrom(fullUrl, type) ?? idFrom(typeof request.url === 'string' ? request.url : undefined, type) ?? randomUUID();
    if (fullUrl) aliases.set(fullUrl, `${type}/${String(resource.id)}`);
    resources.push(resource);
  });
  for (const resource of resources) rewriteReferences(resource, aliases);
  return resources as unknown as SeedResource[];
}

function idFrom(url: string | undefined, type: string): string | undefined {
  if (!url) return undefined;
  const uuid = /^urn:uuid:([0-9a-fA-F-]{36})$/.exec(url);
  if (uuid) return uuid[1]?.toLowerCase();
  const parts = url.split('?')[0]?.split('/') ?? [];
  const at = parts.lastIndexOf(type);
  const id = at >= 0 ? parts[at + 1] : undefined;
  return id && /^[A-Za-z0-9.-]{1,64}$/.test(id) ? id : undefined;
}

function rewriteReferences(node: unknown, aliases: Map<string, string>): void {
  if (Array.isArray(node)) {
    for (const child of node) rewriteReferences(child, aliases);
  } else if (isJson(node)) {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'reference' && typeof value === 'string') node[key] = aliases.get(value) ?? value;
      else rewriteReferences(value, aliases);
    }
  }
}

function asResource(value: unknown, where: string): Json {
  if (!isJson(value) || typeof value.resourceType !== 'string' || !value.resourceType) {
    throw new Error(`${where} is not a FHIR resource (no resourceType)`);
  }
  if (value.id !== undefined && typeof value.id !== 'string') throw new Error(`${where} has a non-string id`);
  return value;
}

function isJson(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
