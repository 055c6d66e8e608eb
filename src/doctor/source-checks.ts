// Live checks of the configured sources: a FHIR server's CapabilityStatement plus one probe search and
// read per watched resource type; a DHIS2 server's /api/system/info with the configured auth, the
// programme and write-back metadata its configuration names, its org units (dhis2-org-units.ts), the
// stages, attributes, data elements and relationship types its mappings name, and one page of the poller's
// own list of tracked entities. An OpenMRS source's REST relationship listing: openmrs-rest.ts.
import type { Bundle, Subscription } from '@medplum/fhirtypes';
import type { SourceSettings } from '../config/types.js';
import { signatureOnlySubscriptionWarning, unauthenticatedSubscriptionWarning } from '../config/warnings.js';
import type { CompiledMapping } from '../mapping/compile.js';
import { silentLogger } from '../observability/logger.js';
import type { SecretScrubber } from '../observability/secret-scrubber.js';
import { Dhis2Client, Dhis2SourceError, isDhis2Uid } from '../sources/dhis2/client.js';
import { entryUid } from '../sources/dhis2/entry-uid.js';
import {
  type CodedMapping,
  codedUids,
  namedUids,
  type TestedCodes,
  unreachableMappings,
} from '../sources/dhis2/mapping-codes.js';
import { dhis2SettingsOf, trackedEntityFilter } from '../sources/dhis2/settings.js';
import {
  type CapabilitySummary,
  capabilityGaps,
  declaresLastUpdated,
  lacksInstanceHistory,
  summarizeCapabilities,
} from '../sources/fhir/capability.js';
import { FhirSourceClient } from '../sources/fhir/fhir-client.js';
import { LISTING_MAX_AGE_DAYS } from '../sources/fhir/relations-listing.js';
import { typeGap } from '../sources/fhir/server-support.js';
import { sortSignals } from '../sources/fhir/sort-signals.js';
import { SourceCallError, systemCode } from '../sources/shared/source-error.js';
import { isRedirect } from '../util/redirect.js';
import { normalisedUrl } from '../util/url.js';
import { checkDhis2OrgUnits } from './dhis2-org-units.js';
import { checkOpenmrsRest } from './openmrs-rest.js';
import { type CheckResult, type DoctorCommand, fail, ok, skip, warn } from './types.js';

/** The error's text, with the system's code of a failed connection when the text does not give it. */
function reason(err: unknown): string {
  if (!(err instanceof Error)) return 'failed';
  const code = systemCode(err.cause);
  return code && !err.message.includes(code) ? `${err.message}: ${code}` : err.message;
}

/**
 * The results as printed: they quote the server (its software name, DHIS2 version, a programme's name,
 * a Subscription's criteria), and a server or a proxy may echo the credentials it was sent. The client's
 * scrubber knows the source's secrets and the tokens it obtained.
 */
function withoutSecrets(secrets: SecretScrubber, results: CheckResult[]): CheckResult[] {
  return results.map((result) => ({ ...result, detail: secrets.text(result.detail) }));
}

/** What doctor reads of a FHIR source's mappings: their subject types and context searches. */
type FhirMapping = Pick<CompiledMapping, 'id' | 'subjectType' | 'context'>;

export async function checkFhirSource(
  settings: SourceSettings,
  watchedTypes: string[],
  mappings: readonly FhirMapping[] = [],
  /** The command the host runs (doctor --for): `sync` receives no notification, so its subscription is not checked. */
  command: DoctorCommand = 'serve',
): Promise<CheckResult[]> {
  // One attempt per call: the doctor reports what it sees rather than retrying it away.
  const client = new FhirSourceClient(settings, { logger: silentLogger, attempts: 1 });
  const results = await fhirSourceChecks(client, settings, watchedTypes, mappings, command);
  // Its REST API is a servlet of its own (a module FHIR2 does not require): checked whatever FHIR answered.
  if (settings.openmrs) results.push(await checkOpenmrsRest(client, settings));
  return withoutSecrets(client.secrets, results);
}

/**
 * The mappings' context searches the server does not serve (its CapabilityStatement does not list their
 * type: the bridge takes them as empty, ServerSupport), and those whose parameters it does not declare for
 * a type whose own parameters it lists (a hint: the bridge asks them, and takes them as empty only when the
 * server answers "not supported"). `mapping context (Type)`, `mapping context (Type: param)`. A
 * `RelatedPerson?patient=` search left undeclared is said apart (`relations`): the fetcher answers it, when
 * the server does not serve it, from the RelatedPerson listing by `_lastUpdated` (relations-listing.ts).
 */
export function contextsOff(
  summary: CapabilitySummary,
  mappings: readonly FhirMapping[],
): { off: string[]; undeclared: string[]; relations: string | undefined } {
  const off: string[] = [];
  const undeclared: string[] = [];
  const listed: string[] = [];
  for (const mapping of mappings) {
    for (const item of mapping.context) {
      if (item.kind !== 'search' || !item.type) continue;
      if (typeGap(summary, item.type)) {
        off.push(`${mapping.id} ${item.name} (${item.type})`);
        continue;
      }
      // Judged only where the statement lists the type's own parameters (a HAPI server's lists every one its
      // search methods take); one that lists only `_lastUpdated`, or none, says nothing of the others.
      const declared = summary.types.get(item.type)?.searchParams ?? new Set<string>();
      if (![...declared].some((name) => !name.startsWith('_'))) continue;
      const missing = (item.params ?? [])
        .map((p) => p.name.split(/[:.]/)[0] ?? p.name)
        .filter((name) => !name.startsWith('_') && !declared.has(name) && !summary.commonSearchParams.has(name));
      if (missing.length === 0) continue;
      if (isRelationsSearch(item)) listed.push(`${mapping.id} ${item.name}`);
      else undeclared.push(`${mapping.id} ${item.name} (${item.type}: ${missing.join(', ')})`);
    }
  }
  return { off, undeclared, relations: listed.length > 0 ? relationsSaid(summary, listed) : undefined };
}

/** A search the fetcher answers from the listing when it is not served: `RelatedPerson?patient=` alone. */
function isRelationsSearch(item: FhirMapping['context'][number]): boolean {
  if (item.kind !== 'search' || item.type !== 'RelatedPerson') return false;
  const names = (item.params ?? []).map((p) => p.name).filter((name) => !name.startsWith('_'));
  return names.length === 1 && names[0] === 'patient';
}

/**
 * What becomes of the relations searches: the listing they fall back on is judged as the statement declares
 * it, a hint like the others (the fetcher asks it, and takes it as empty only on a "not supported").
 */
function relationsSaid(summary: CapabilitySummary, listed: readonly string[]): string {
  const instead = `RelatedPerson?patient= is not declared, for ${listed.join('; ')}: if the server answers it "not supported" (OpenMRS), the relations of a patient born up to ${LISTING_MAX_AGE_DAYS} days ago are read from the RelatedPerson listing by _lastUpdated instead, and an older patient's taken as empty (the mother comes when the site records her as the child's parent)`;
  return declaresLastUpdated(summary, 'RelatedPerson')
    ? instead
    : `${instead}; its CapabilityStatement does not declare _lastUpdated for RelatedPerson either: if the server refuses that listing too, they stay empty and the mother is left out`;
}

async function fhirSourceChecks(
  client: FhirSourceClient,
  settings: SourceSettings,
  allWatched: string[],
  mappings: readonly FhirMapping[],
  command: DoctorCommand,
): Promise<CheckResult[]> {
  const name = `source ${settings.id}`;
  const where = normalisedUrl(settings.baseUrl);
  // The server is there, the FHIR API is not at that path: a 404 for <baseUrl>/metadata, or a success that
  // is no CapabilityStatement (a web app's index page served for any path it does not know, other JSON).
  const path =
    '; check the base path of sources[].baseUrl: <baseUrl>/metadata must answer (HAPI: …/fhir, OpenMRS: …/openmrs/ws/fhir2/R4)';
  let statement: unknown;
  try {
    statement = await client.capabilityStatement();
  } catch (err) {
    const status = err instanceof SourceCallError ? err.status : undefined;
    const elsewhere =
      status === 404 ||
      (status !== undefined && status >= 200 && status < 300) ||
      (err instanceof SourceCallError && status === undefined && /not a FHIR resource/.test(err.message));
    return [fail(name, `${where}: cannot read the CapabilityStatement (${reason(err)})${elsewhere ? path : ''}`)];
  }
  const summary = summarizeCapabilities(statement);
  if (!summary) return [fail(name, `${where}/metadata is not a CapabilityStatement${path}`)];

  const results: CheckResult[] = [];
  // A type only linked to a subject that the server does not serve is not polled (FhirPoller): its
  // contexts are said below. A subject type must be served.
  const subjectTypes = new Set(mappings.map((mapping) => mapping.subjectType));
  const watchedTypes = allWatched.filter(
    (type) => subjectTypes.size === 0 || subjectTypes.has(type) || !typeGap(summary, type),
  );
  const gaps = watchedTypes.flatMap((type) => capabilityGaps(summary, type));
  if (gaps.length > 0) results.push(fail(name, `the CapabilityStatement of ${where}: ${gaps.join('; ')}`));

  // A probe search exactly as the poller sends it (an empty page is fine) and a read of an id that
  // does not exist (404 is the expected answer): what the statement declares is only a hint.
  const since = new Date(Date.now() - 60_000).toISOString();
  const signals = new Map<string, ReturnType<typeof sortSignals>>();
  const probes = await Promise.all(
    watchedTypes.map(async (type) => {
      try {
        const page = await client.searchPage(type, { _lastUpdated: `ge${since}`, _sort: '_lastUpdated', _count: '1' });
        signals.set(type, sortSignals(page));
        await client.read(type, 'opencrvs-bridge-doctor-probe');
        return undefined;
      } catch (err) {
        return `${type}: ${reason(err)}`;
      }
    }),
  );
  const failedProbes = probes.filter((p): p is string => p !== undefined);
  const sortedNot = watchedTypes.filter((type) => signals.get(type) === 'unsorted');
  if (sortedNot.length > 0)
    results.push(
      warn(
        name,
        `the server's answer for ${sortedNot.join(', ')} shows _sort=_lastUpdated was not used: each poll pass reads every result to the end`,
      ),
    );
  const blind = watchedTypes.filter((type) => signals.get(type) === 'blind');
  if (blind.length > 0)
    results.push(
      warn(
        name,
        `the server's answer for ${blind.join(', ')} has neither Bundle.total nor a self link naming the search: the bridge relies on it honouring _sort=_lastUpdated, and could not always tell if it did not`,
      ),
    );
  if (failedProbes.length > 0) {
    results.push(fail(name, `search by _lastUpdated with _sort, or read, refused: ${failedProbes.join('; ')}`));
  }
  const undeclared = watchedTypes.filter((type) => !declaresLastUpdated(summary, type));
  if (undeclared.length > 0 && failedProbes.length === 0) {
    results.push(warn(name, `_lastUpdated not declared for ${undeclared.join(', ')} (the probe search worked)`));
  }
  const { off, undeclared: undeclaredParams, relations } = contextsOff(summary, mappings);
  if (off.length > 0 || undeclaredParams.length > 0 || relations) {
    const said = [
      ...(off.length > 0 ? [`mapping contexts the server does not serve, taken as empty: ${off.join('; ')}`] : []),
      ...(undeclaredParams.length > 0
        ? [
            `Search parameters its CapabilityStatement does not declare (taken as empty if the server answers "not supported"): ${undeclaredParams.join('; ')}`,
          ]
        : []),
    ];
    const sentences = [
      ...(said.length > 0 ? [...said, 'What they would fill stays empty (the rest of each record is delivered)'] : []),
      ...(relations ? [relations] : []),
    ];
    results.push(warn(name, `${sentences.join('. ')}. See docs/fhir-sources.md`));
  }
  if (settings.subscription && command === 'sync') results.push(subscriptionNotChecked(settings.id));
  else if (settings.subscription) results.push(...(await subscriptionChecks(client, settings, summary, watchedTypes)));
  if (gaps.length === 0 && failedProbes.length === 0) {
    const server = [summary.software, summary.fhirVersion ? `FHIR ${summary.fhirVersion}` : undefined]
      .filter(Boolean)
      .join(', ');
    results.unshift(
      ok(
        name,
        `${where}${server ? ` (${server})` : ''}: search by _lastUpdated with _sort and read work for ${watchedTypes.join(', ')}`,
      ),
    );
  }
  return results;
}

/**
 * Under --for sync: a sync pass opens no receiver, so the EMR's Subscriptions, the secrets its notifications
 * present and the history-instance read of a deleted resource they name are all serve's. Said as not checked,
 * not left out: the same configuration run by serve elsewhere is checked without --for sync.
 */
function subscriptionNotChecked(sourceId: string): CheckResult {
  return skip(
    `source ${sourceId} subscription`,
    'not checked: sync opens no receiver, so no notification reaches it; the Subscriptions on the server, their secrets and history-instance are checked for serve (doctor without --for sync)',
  );
}

/**
 * What serve's receiver needs of a source with `subscription`: secrets that authenticate its notifications,
 * history-instance for the deletions they name, and Subscriptions on the server that send them.
 */
async function subscriptionChecks(
  client: FhirSourceClient,
  settings: SourceSettings,
  summary: CapabilitySummary,
  watchedTypes: string[],
): Promise<CheckResult[]> {
  const name = `source ${settings.id}`;
  const results: CheckResult[] = [];
  const subscriptionWarning =
    unauthenticatedSubscriptionWarning(settings) ?? signatureOnlySubscriptionWarning(settings);
  if (subscriptionWarning) results.push(warn(name, subscriptionWarning));
  // Deletions arrive only as notifications, so without a subscription the history is never read.
  const historyless = watchedTypes.filter((type) => lacksInstanceHistory(summary, type));
  if (historyless.length > 0)
    results.push(
      warn(
        name,
        `the server does not declare history-instance for ${historyless.join(', ')}: when one is deleted, only ledger rows that name it are evaluated again (a deleted fetal-death report leaves its birth skipped until the child's record changes)`,
      ),
    );
  results.push(
    summary.types.has('Subscription')
      ? await checkSubscriptions(client, settings.id, watchedTypes)
      : warn(
          name,
          `subscription configured, but the server's CapabilityStatement lists no Subscription (OpenMRS has none): no notification will come; poll it (sources[].poll) and remove sources[].subscription of source ${settings.id}`,
        ),
  );
  return results;
}

const SUBSCRIPTIONS_LISTED = 200;

/**
 * The server's Subscriptions that notify this source's receiver (`…/fhir-subscription/<id>`, whatever
 * host the EMR reaches the bridge by): whether every watched type has one, and whether the server
 * reports any as failing. Without them no notification ever comes, which nothing else would show.
 */
async function checkSubscriptions(
  client: FhirSourceClient,
  sourceId: string,
  watchedTypes: string[],
): Promise<CheckResult> {
  const name = `source ${sourceId}`;
  const path = `/fhir-subscription/${encodeURIComponent(sourceId)}`;
  let page: Bundle;
  try {
    page = await client.searchPage('Subscription', { _count: String(SUBSCRIPTIONS_LISTED) });
  } catch (err) {
    return warn(name, `subscription configured; the server's Subscriptions could not be listed (${reason(err)})`);
  }
  const ours = (page.entry ?? [])
    .map((entry) => entry.resource)
    .filter((r): r is Subscription => r?.resourceType === 'Subscription')
    .filter((sub) => (sub.channel?.endpoint ?? '').replace(/\/+$/, '').endsWith(path));
  const create = `create them with \`opencrvs-bridge subscriptions --apply\``;
  if (ours.length === 0) {
    return warn(
      name,
      `subscription configured, but no Subscription on the server notifies ${path}: ${create} (polling still catches up)`,
    );
  }
  const covered = new Set(ours.map((sub) => (sub.criteria ?? '').split('?')[0]));
  const missing = watchedTypes.filter((type) => !covered.has(type));
  const failing = ours.filter((sub) => sub.status === 'error' || sub.status === 'off');
  const problems = [
    ...(missing.length > 0 ? [`none for ${missing.join(', ')} (${create})`] : []),
    ...failing.map((sub) => `Subscription/${sub.id} (${sub.criteria}) is ${sub.status}`),
  ];
  const found =
    ours.length === 1
      ? `1 Subscription on the server notifies ${path}`
      : `${ours.length} Subscriptions on the server notify ${path}`;
  return problems.length > 0
    ? warn(name, `${found}; ${problems.join('; ')}`)
    : ok(name, `${found}, covering ${watchedTypes.join(', ')}`);
}

/**
 * DHIS2: GET /api/system/info with the configured auth (reachable, credentials accepted, a version), then
 * the metadata the configuration names: the programme polled, and the write-back's programme stage, data
 * element or attribute. A uid typed wrong otherwise polls nothing, quietly. Then the poller's own list call
 * (checkDhis2Poll): DHIS2 shares a programme's metadata and its data apart.
 */
export async function checkDhis2Source(
  settings: SourceSettings,
  mappings: readonly CodedMapping[] = [],
  /** The source's place in `sources`, so a line names the key as the config check does (`sources[1].dhis2.program`). */
  index?: number,
): Promise<CheckResult[]> {
  const client = new Dhis2Client(settings, { logger: silentLogger, attempts: 1 });
  const at = `sources[${index ?? ''}]`;
  return withoutSecrets(client.secrets, await dhis2SourceChecks(client, settings, mappings, at));
}

async function dhis2SourceChecks(
  client: Dhis2Client,
  settings: SourceSettings,
  mappings: readonly CodedMapping[],
  at: string,
): Promise<CheckResult[]> {
  const name = `source ${settings.id}`;
  const where = normalisedUrl(client.baseUrl);
  let version: string | undefined;
  try {
    version = await client.systemInfo();
  } catch (err) {
    const status = err instanceof Dhis2SourceError ? err.status : undefined;
    // A page without DHIS2's WebMessage (Dhis2Client): a proxy or firewall in front of DHIS2 answered, and
    // the credentials may be fine; sending the operator to rotate them would hide the rule that refused.
    // A redirect (never followed): the client's message names where it points and the setting to change.
    if (err instanceof Dhis2SourceError && status !== undefined && isRedirect(status))
      return [fail(name, `${where}: ${reason(err)}`)];
    if (err instanceof Dhis2SourceError && err.foreign)
      return [
        fail(
          name,
          status === 403
            ? `${where}: HTTP 403 from something in front of DHIS2 (a proxy or firewall, not DHIS2's answer) refused the bridge: check its rules (an IP allow-list, a WAF) for this host`
            : `${where}/api/system/info answered HTTP ${status}, not a DHIS2 answer (a proxy or gateway in front of it): is ${at}.baseUrl right?`,
        ),
      ];
    if (status === 401 || status === 403)
      return [fail(name, `${where}: HTTP ${status}, the configured ${settings.auth.type} auth was refused`)];
    // DHIS2's own 404: the server is there, its API is not at that path (a context path left out or
    // added, a versioned /api/41 the client would call as /api/41/api/…).
    if (status === 404)
      return [
        fail(
          name,
          `${where}/api/system/info answered HTTP 404; check the base path of ${at}.baseUrl: the DHIS2 server's root, with or without /api, not a versioned /api/41 (e.g. https://dhis2.example.org or https://dhis2.example.org/dhis)`,
        ),
      ];
    if (status !== undefined) return [fail(name, `${where}/api/system/info answered HTTP ${status}`)];
    return [fail(name, `${where} unreachable: ${reason(err)}`)];
  }
  if (!version) return [fail(name, `${where}/api/system/info is not a DHIS2 system info answer`)];
  const results = [ok(name, `${where}: DHIS2 ${version} reachable with the configured ${settings.auth.type} auth`)];
  let programMissing = false;
  try {
    const metadata = await checkDhis2Metadata(client, settings, mappings, at);
    programMissing = metadata.programMissing;
    results.push(...metadata.results);
  } catch (err) {
    results.push(warn(`${name} metadata`, `could not be read: ${reason(err)}`));
  }
  try {
    const orgUnits = await checkDhis2OrgUnits(client, settings, at);
    if (orgUnits) results.push(orgUnits);
  } catch (err) {
    results.push(warn(`${name} org units`, `could not be read: ${reason(err)}`));
  }
  // A programme DHIS2 does not have is failed above, naming the key; its list would say the same again.
  if (!programMissing) results.push(await checkDhis2Poll(client, settings, at));
  return results;
}

/**
 * One page, of one record, of the poller's list (GET /api/tracker/trackedEntities with the source's filter,
 * in its order, from DHIS2's time now, so that nothing is usually listed): what reading the programme's
 * metadata does not show. DHIS2 shares a programme's metadata and its data apart, and 2.42+ answers the list
 * of a user who may see the one but not read the other 403 "User has no access to program: <uid>": doctor
 * passed, and every poll failed.
 */
async function checkDhis2Poll(client: Dhis2Client, settings: SourceSettings, at: string): Promise<CheckResult> {
  const name = `source ${settings.id} poll`;
  const dhis2 = dhis2SettingsOf(settings);
  const params: Record<string, string> = {
    ...trackedEntityFilter(dhis2),
    order: 'updatedAt:asc',
    page: '1',
    pageSize: '1',
  };
  const now = await client.serverTime().catch(() => undefined);
  if (now) params.updatedAfter = now;
  try {
    await client.trackedEntityPage(params);
  } catch (err) {
    const refused = err instanceof Dhis2SourceError ? err.programRefused : undefined;
    if (refused === 'unshared')
      return fail(
        name,
        `${at}.auth: DHIS2 does not share the data of programme ${dhis2.program} with this user (HTTP 403 "User has no access to program"), so every poll fails: in DHIS2, give the user data read access in the programme's sharing (reading its metadata is not enough), or check ${at}.dhis2.program`,
      );
    if (refused === 'missing')
      return fail(
        name,
        `${at}.dhis2.program ${dhis2.program}: DHIS2 answers the poller's list that it has no such programme`,
      );
    // The client's hint sends the reader to doctor, which this is.
    const said = reason(err).replace(/; run doctor\)/, ')');
    return fail(name, `the poller's list of tracked entities (${at}.dhis2: program, orgUnits, fields) failed: ${said}`);
  }
  return ok(
    name,
    `the poller's list of tracked entities in programme ${dhis2.program} answers with ${at}.dhis2 and ${at}.auth`,
  );
}

/**
 * What doctor asks of the programme: its stages with their data elements, its attributes, and its tracked
 * entity type's (DHIS2 lists those with a programme's own when a tracked entity is read in it).
 */
const PROGRAM_FIELDS =
  'id,displayName,programStages[id,displayName,programStageDataElements[dataElement[id]]],' +
  'programTrackedEntityAttributes[trackedEntityAttribute[id]],' +
  'trackedEntityType[id,trackedEntityTypeAttributes[trackedEntityAttribute[id]]]';

type Stage = { id?: unknown; displayName?: unknown; programStageDataElements?: unknown };

async function checkDhis2Metadata(
  client: Dhis2Client,
  settings: SourceSettings,
  mappings: readonly CodedMapping[],
  at: string,
): Promise<{ results: CheckResult[]; programMissing: boolean }> {
  const name = `source ${settings.id} metadata`;
  const { program } = dhis2SettingsOf(settings);
  const found = await client.metadata('programs', program, PROGRAM_FIELDS);
  if (!found) {
    return {
      results: [fail(name, `${at}.dhis2.program ${program}: no such programme in DHIS2 (or this user cannot see it)`)],
      programMissing: true,
    };
  }
  const problems: string[] = [];
  problems.push(...trackedEntityTypeProblems(dhis2SettingsOf(settings).trackedEntityType, found, program, at));
  const writeBack = settings.writeBack;
  const stages = Array.isArray(found.programStages) ? (found.programStages as Stage[]) : [];
  if (writeBack?.programStage && !stages.some((stage) => stage.id === writeBack.programStage))
    problems.push(`${at}.writeBack.programStage ${writeBack.programStage} is not a stage of programme ${program}`);
  if (writeBack?.dataElement) {
    const element = await client.metadata('dataElements', writeBack.dataElement, TARGET_FIELDS);
    if (!element) problems.push(`${at}.writeBack.dataElement ${writeBack.dataElement}: no such data element`);
    else {
      problems.push(...dataElementStageProblems(writeBack.dataElement, writeBack.programStage, program, stages, at));
      problems.push(...targetProblems(`${at}.writeBack.dataElement`, writeBack.dataElement, element, mappings));
    }
  }
  if (writeBack?.attribute) {
    const attribute = await client.metadata('trackedEntityAttributes', writeBack.attribute, TARGET_FIELDS);
    if (!attribute) problems.push(`${at}.writeBack.attribute ${writeBack.attribute}: no such tracked entity attribute`);
    else {
      problems.push(...attributeTypeProblems(writeBack.attribute, found, program, at));
      problems.push(...targetProblems(`${at}.writeBack.attribute`, writeBack.attribute, attribute, mappings));
    }
  }
  // Each mapping's stage sets, read once. Mappings that cannot match the programme at all are left to the
  // mappings check (sources/overlap.ts): judged are the others.
  const unreachable = new Set(unreachableMappings(settings, mappings).map((u) => u.mapping));
  const tested = mappings.map((mapping) => ({ mapping, stages: codedUids(mapping, 'programStage') }));
  const judged = tested.filter(({ mapping }) => !unreachable.has(mapping));
  problems.push(...stageProblems(judged, program, stages, at));
  const relationships = await relationshipTypeProblems(
    client,
    judged.map((j) => j.mapping),
  );
  problems.push(...relationships.missing);
  const results: CheckResult[] = [];
  if (problems.length > 0) results.push(fail(name, problems.join('; ')));
  else {
    const label = typeof found.displayName === 'string' ? ` (${found.displayName})` : '';
    const staged = tested.filter((t) => t.stages).map((t) => t.mapping.id);
    const stagesFound = staged.length > 0 ? `, with the stages of ${staged.join(', ')}` : '';
    results.push(
      ok(name, `programme ${program}${label} found${stagesFound}${writeBack ? ', with the write-back target' : ''}`),
    );
  }
  const unknown = namedProblems(
    judged.map((j) => j.mapping),
    program,
    found,
    stages,
  );
  unknown.push(...relationships.partly);
  if (unknown.length > 0) results.push(warn(name, unknown.join('; ')));
  return { results, programMissing: false };
}

/** What doctor asks of the write-back's data element or attribute. */
const TARGET_FIELDS = 'id,displayName,valueType';

/** Value types that take the tracking id as it is: DHIS2 refuses it in a number, a date, a file… */
const TEXT_VALUE_TYPES = new Set(['TEXT', 'LONG_TEXT']);

/**
 * What makes the write-back's data element or attribute no place for the tracking id: a value type other
 * than text (the demo database's `uf3svrmp8Oj` is a FILE_RESOURCE on some servers), and a uid a mapping's
 * `codes` name, which holds the record's own data (the national id): the bridge does not overwrite a value
 * there, so every write-back would be abandoned, and the tracking id would feed the declaration. Not
 * judged when DHIS2 does not give the value type (a server that ignores `fields`).
 */
function targetProblems(
  key: string,
  uid: string,
  metadata: Record<string, unknown>,
  mappings: readonly CodedMapping[],
): string[] {
  const problems: string[] = [];
  const { valueType } = metadata;
  if (typeof valueType === 'string' && !TEXT_VALUE_TYPES.has(valueType))
    problems.push(`${key} ${uid} has value type ${valueType}: the tracking id needs a TEXT one, made for it`);
  for (const mapping of mappings) {
    const sets = Object.entries(mapping.codes ?? {})
      .filter(([, entries]) => entries.some((entry) => entryUid(String(entry)) === uid))
      .map(([set]) => `codes.${set}`);
    if (sets.length > 0)
      problems.push(
        `${key} ${uid} is read by mapping ${mapping.id} (${mapping.file}) ${sets.join(', ')}: it holds the ` +
          "record's own data, no place for the tracking id (a TEXT field made for it is)",
      );
  }
  return problems;
}

/**
 * `dhis2.trackedEntityType` against the programme's own: DHIS2 enrols only tracked entities of the
 * programme's type, and the poller keeps only the listed records of the configured one, so another type
 * reads nothing, every poll passing. Not judged when DHIS2 does not say the programme's type.
 */
function trackedEntityTypeProblems(
  configured: string | undefined,
  program: Record<string, unknown>,
  programUid: string,
  at: string,
): string[] {
  const type = program.trackedEntityType;
  const own = typeof type === 'object' && type !== null ? (type as Record<string, unknown>).id : undefined;
  if (configured === undefined || typeof own !== 'string' || own === configured) return [];
  return [
    `${at}.dhis2.trackedEntityType ${configured} is not the tracked entity type of programme ${programUid} ` +
      `(${own}), the only type it enrols: the source would read nothing (set ${own}, or remove the key)`,
  ];
}

/**
 * The write-back's attribute against the programme's tracked entity type: the bridge updates the tracked
 * entity's own attributes, and a programme attribute (the demo's National identifier) belongs to the
 * record's enrollment and to the programme's form. Not judged when DHIS2 does not list the type's
 * attributes.
 */
function attributeTypeProblems(
  attribute: string,
  program: Record<string, unknown>,
  programUid: string,
  at: string,
): string[] {
  const type =
    typeof program.trackedEntityType === 'object' && program.trackedEntityType !== null
      ? (program.trackedEntityType as Record<string, unknown>)
      : {};
  const own = referencedIds(type.trackedEntityTypeAttributes, 'trackedEntityAttribute');
  if (!own || own.includes(attribute)) return [];
  const typeUid = typeof type.id === 'string' ? ` ${type.id}` : '';
  return [
    `${at}.writeBack.attribute ${attribute} is not an attribute of the tracked entity type${typeUid} of programme ` +
      `${programUid} (a programme attribute, or another type's): use a TEXT attribute of the type, made for the tracking id`,
  ];
}

/**
 * The relationship types the mappings find the subject's relationships by (`codes.motherRelationship`: the
 * mother is the other end of one). A type DHIS2 does not have matches no relationship, so no birth has a
 * mother, and neither a poll, `map` nor the ledger says why. `missing` (failed): a set none of whose uids
 * DHIS2 has; `partly` (warned): some of them, as an old uid kept beside its new one would be. Each uid is
 * read once (GET /api/relationshipTypes/<uid>); an entry that is no uid is missing without asking.
 */
async function relationshipTypeProblems(
  client: Dhis2Client,
  mappings: readonly CodedMapping[],
): Promise<{ missing: string[]; partly: string[] }> {
  const known = new Map<string, boolean>();
  const exists = async (uid: string): Promise<boolean> => {
    let found = known.get(uid);
    if (found === undefined) {
      found = isDhis2Uid(uid) && (await client.metadata('relationshipTypes', uid)) !== undefined;
      known.set(uid, found);
    }
    return found;
  };
  const missing: string[] = [];
  const partly: string[] = [];
  for (const mapping of mappings) {
    for (const { set, entries } of namedUids(mapping, 'relationshipType')) {
      const absent: string[] = [];
      for (const entry of entries) if (!(await exists(entryUid(entry)))) absent.push(entry);
      if (absent.length === 0) continue;
      const all = absent.length === entries.length;
      (all ? missing : partly).push(
        `mapping ${mapping.id} (${mapping.file}) codes.${set} [${absent.join(', ')}]: no such relationship type in DHIS2` +
          (all
            ? ', so no relationship matches the set and what the mapping reads through one (the mother) is never there: ' +
              "set it to your relationship type's uid (GET /api/relationshipTypes?fields=id,displayName)"
            : ''),
      );
    }
  }
  return { missing, partly };
}

/**
 * The write-back's data element against the stage it goes to: DHIS2 refuses a data value whose data element
 * is not one of its event's stage (tracker import E1305 "DataElement … is not part of … program stage"), so every write
 * would be refused and the job abandoned, row after row. With `writeBack.programStage` that stage's
 * `programStageDataElements`; without it the trigger event's stage, which may be any of the programme's: the
 * data element must be in one of them at least. Not judged when DHIS2 does not list a stage's data elements
 * (a server that ignores `fields` for them).
 */
function dataElementStageProblems(
  dataElement: string,
  programStage: string | undefined,
  program: string,
  stages: readonly Stage[],
  at: string,
): string[] {
  const elementsOf = (stage: Stage) => referencedIds(stage.programStageDataElements, 'dataElement');
  if (programStage) {
    const stage = stages.find((s) => s.id === programStage);
    const elements = stage && elementsOf(stage);
    // A stage the programme does not have is said above (writeBack.programStage).
    if (!elements || elements.includes(dataElement)) return [];
    return [
      `${at}.writeBack.dataElement ${dataElement} is not a data element of ${at}.writeBack.programStage ` +
        `${programStage}: DHIS2 would refuse every write of the tracking id there (E1305)`,
    ];
  }
  const listed = stages.map(elementsOf).filter((ids): ids is string[] => ids !== undefined);
  if (listed.length === 0 || listed.some((ids) => ids.includes(dataElement))) return [];
  return [
    `${at}.writeBack.dataElement ${dataElement} is a data element of no stage of programme ${program}: DHIS2 ` +
      `would refuse every write of the tracking id to the triggering event (E1305); set ${at}.writeBack.programStage ` +
      'to a stage that has it, or name a data element of the stage',
  ];
}

/**
 * The mappings' stage code sets (`programStage.coded('birthStage')` on the subject's own events) against the
 * programme's stages: a set naming no stage of it finds no event, so its mapping never triggers. A stage
 * test on another person's events (the mother's) is not judged: she is read outside the programme polled.
 */
function stageProblems(
  judged: ReadonlyArray<{ mapping: CodedMapping; stages: TestedCodes | undefined }>,
  program: string,
  stages: readonly Stage[],
  at: string,
): string[] {
  const ids = stages.map((stage) => String(stage.id));
  const listed = stages.map(
    (stage) => `${String(stage.id)}${stage.displayName ? ` ${String(stage.displayName)}` : ''}`,
  );
  const problems: string[] = [];
  for (const { mapping, stages: tested } of judged) {
    if (!tested || ids.some((id) => tested.matches(id))) continue;
    problems.push(
      `mapping ${mapping.id} (${at}.mappings) codes.${tested.sets.join(', codes.')} [${tested.uids.join(', ')}]: ` +
        `no stage of programme ${program} (its stages: ${listed.join(', ') || 'none'}), so it never notifies a ${mapping.eventType}`,
    );
  }
  return problems;
}

/** The `id`s of `list[].<key>` (DHIS2's references, `{ id }`); undefined when the answer has no such list. */
function referencedIds(list: unknown, key: string): string[] | undefined {
  if (!Array.isArray(list)) return undefined;
  return list.flatMap((item: unknown) => {
    const ref = typeof item === 'object' && item !== null ? (item as Record<string, unknown>)[key] : undefined;
    const id = typeof ref === 'object' && ref !== null ? (ref as Record<string, unknown>).id : undefined;
    return typeof id === 'string' ? [id] : [];
  });
}

/**
 * The attribute and data element uids the mappings read of the subject that the programme does not have:
 * an attribute neither the programme's nor its tracked entity type's, a data element of none of its stages.
 * A value DHIS2 never serves there is left out of every declaration, with nothing said at run time but a
 * missing field. Warned (a set may keep an old uid beside the new one on purpose), naming the mapping file,
 * the set and the uids: never a value. Not checked when DHIS2 does not list them (a server that ignores
 * `fields` for them).
 */
function namedProblems(
  mappings: readonly CodedMapping[],
  program: string,
  found: Record<string, unknown>,
  stages: readonly Stage[],
): string[] {
  const type =
    typeof found.trackedEntityType === 'object' && found.trackedEntityType !== null
      ? (found.trackedEntityType as Record<string, unknown>)
      : {};
  const programAttributes = referencedIds(found.programTrackedEntityAttributes, 'trackedEntityAttribute');
  const attributes =
    programAttributes &&
    new Set([
      ...programAttributes,
      ...(referencedIds(type.trackedEntityTypeAttributes, 'trackedEntityAttribute') ?? []),
    ]);
  const stageElements = stages.map((stage) => referencedIds(stage.programStageDataElements, 'dataElement'));
  const dataElements = stageElements.some((ids) => ids !== undefined)
    ? new Set(stageElements.flatMap((ids) => ids ?? []))
    : undefined;
  const kinds = [
    { kind: 'attribute', have: attributes, what: `no attribute of programme ${program} or of its tracked entity type` },
    { kind: 'dataElement', have: dataElements, what: `no data element of a stage of programme ${program}` },
  ] as const;
  const problems: string[] = [];
  for (const mapping of mappings) {
    for (const { kind, have, what } of kinds) {
      if (!have) continue;
      for (const { set, entries } of namedUids(mapping, kind)) {
        const missing = entries.filter((entry) => !have.has(entryUid(entry)));
        if (missing.length === 0) continue;
        problems.push(
          `mapping ${mapping.id} (${mapping.file}) codes.${set} [${missing.join(', ')}]: ${what}, so what it reads is never there`,
        );
      }
    }
  }
  return problems;
}
