// `opencrvs-bridge doctor`: every live check in order, each a line an operator can act on. Later
// checks that depend on an earlier one (routing needs a token) are skipped rather than piled on.
import { ConfigError, type Env } from '../config/index.js';
import { loopbackSubscriptionWarning } from '../config/warnings.js';
import type { MappingSet } from '../mapping/index.js';
import { createOpenCrvsClient } from '../opencrvs/index.js';
import { unreachableMappingWarnings } from '../sources/dhis2/mapping-codes.js';
import { checkSourceMappings } from '../sources/overlap.js';
import { checkConfig, checkMappings, checkStore } from './local-checks.js';
import { checkEventsApi, checkRouting, checkToken } from './opencrvs-checks.js';
import { checkDhis2Source, checkFhirSource } from './source-checks.js';
import { checkSourceIds } from './source-ids.js';
import { type CheckResult, type DoctorCommand, type DoctorReport, fail, skip, warn } from './types.js';
import { checkWriteBackSharing } from './write-back-sharing.js';

export type { CheckResult, CheckStatus, DoctorCommand, DoctorReport } from './types.js';

export interface DoctorOptions {
  /** The config file (--config or BRIDGE_CONFIG). */
  file?: string;
  env: Env;
  /**
   * The command this host runs (--for): `serve` (the default) or `sync`, which reads only the secrets it
   * presents and opens no listener, so neither its secrets nor its address are checked (DoctorCommand).
   */
  for?: DoctorCommand;
}

export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const checks: CheckResult[] = [];
  const command = options.for ?? 'serve';
  const { result, config: full, partial } = checkConfig(options.file, options.env, command);
  checks.push(result);
  // A secret file that cannot be used (a rotation under way), or a secret's ${NAME} not set in this shell,
  // fails the config check, and the checks that need no secret still run on the rest: a held queue is what
  // the operator needs to see then.
  const config = full ?? partial?.config;
  if (!config) return { ok: false, checks };
  const notLoaded = 'not checked: a secret it needs did not load (see config)';

  // The mappings first: they say which event types each source notifies, which the source-id check names.
  const mappingResults: CheckResult[] = [];
  const eventTypes = new Set<string>();
  const mappingsBySource = new Map<string, MappingSet>();
  for (const source of config.sources) {
    const loaded = checkMappings(config, source);
    mappingResults.push(loaded.result);
    if (loaded.mappings) {
      mappingsBySource.set(source.id, loaded.mappings);
      for (const mapping of loaded.mappings.mappings) eventTypes.add(mapping.eventType);
    }
  }
  const typesOf = (id: string) => mappingsBySource.get(id)?.mappings.map((m) => m.eventType);
  const loadedOf = (i: number) => mappingsBySource.get(config.sources[i]?.id ?? '')?.mappings;
  checks.push(...checkSourceIds(config, typesOf), ...checkStore(config, command), ...mappingResults);

  // Mappings that would notify a record by their order, or twice: serve and sync refuse them (sources/overlap.ts).
  try {
    checkSourceMappings(config, loadedOf);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    checks.push(fail('sources', err.message));
  }
  for (const { sourceId, message } of unreachableMappingWarnings(config.sources, loadedOf))
    checks.push(warn(`mappings ${sourceId}`, message));
  checks.push(...checkWriteBackSharing(config.sources, typesOf));

  const sourceChecks = await Promise.all(
    config.sources.map(async (source, index): Promise<CheckResult[]> => {
      // What serve warns of at start (config/warnings.ts), from the configuration alone: said whatever the
      // live checks find (an EMR that cannot call the bridge is no failure of the EMR). Not for sync, which
      // opens no receiver (nor warns of it).
      const unreachable = command === 'serve' ? loopbackSubscriptionWarning(config.http, source) : undefined;
      const said = unreachable ? [warn(`source ${source.id}`, unreachable)] : [];
      if (!full && !partial?.sourcesRead) return [skip(`source ${source.id}`, notLoaded), ...said];
      const mappings = mappingsBySource.get(source.id);
      if (source.kind === 'dhis2')
        return [...(await checkDhis2Source(source, mappings?.mappings ?? [], index)), ...said];
      // Without mappings the watched types are unknown; reachability is still worth knowing.
      return [
        ...(await checkFhirSource(source, mappings?.watchedResourceTypes() ?? [], mappings?.mappings, command)),
        ...said,
      ];
    }),
  );
  checks.push(...sourceChecks.flat());
  // Only secrets presented to the bridge missing (the admin page's token not exported in this shell, a
  // subscription's secret file not mounted here): OpenCRVS is checked all the same, with the secrets it
  // needs, which did load.
  const live = full ?? (partial?.opencrvsRead ? partial.config : undefined);
  if (!live) {
    checks.push(skip('opencrvs token', notLoaded), skip('opencrvs scopes', notLoaded), skip('routing', notLoaded));
    return { ok: false, checks };
  }

  const client = createOpenCrvsClient(live.opencrvs);
  try {
    const token = await checkToken(live, client, [...eventTypes].sort());
    checks.push(...token.results);
    // 2.0's routing check asks eventsUrl itself (its /locations); 1.9's asks the gateway.
    if (live.opencrvs.version === '1.9')
      checks.push(
        token.tokenOk ? await checkEventsApi(live, client) : skip('opencrvs events', 'needs an OpenCRVS token'),
      );
    checks.push(...(token.tokenOk ? await checkRouting(live, client) : [skip('routing', 'needs an OpenCRVS token')]));
  } finally {
    client.close?.();
  }
  return { ok: checks.every((c) => c.status !== 'fail'), checks };
}

const MARKS: Record<CheckResult['status'], string> = { ok: '✔', fail: '✖', warn: '!', skip: '-' };

/**
 * One line per check: mark, name, detail; then the count. Warnings are counted too: a bare "all checks
 * passed" under a first sync that would notify the whole history read as nothing to do.
 */
export function formatReport(report: DoctorReport): string {
  const lines = report.checks.map((c) => `${MARKS[c.status]} ${c.name}: ${c.detail}`);
  const count = (status: CheckResult['status']) => report.checks.filter((c) => c.status === status).length;
  const failed = count('fail');
  const warned = count('warn');
  const warnings = warned > 0 ? `, ${warned} warning${warned === 1 ? '' : 's'} (${MARKS.warn}) to read` : '';
  lines.push(
    report.ok ? `\nall checks passed${warnings}` : `\n${failed} check${failed === 1 ? '' : 's'} failed${warnings}`,
  );
  return lines.join('\n');
}
