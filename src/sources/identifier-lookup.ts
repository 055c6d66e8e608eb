// How to find a record's id at the configured sources by an identifier (an MRN, an OpenMRS identifier):
// identifiers are personal data, which the ledger indexes nowhere, so it cannot be searched by one; the source
// can. Said by `ledger --find` and by the admin page's Find help, alike.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { mappingFile } from '../config/paths.js';
import type { SourceSettings } from '../config/types.js';
import { normalisedUrl } from '../util/url.js';
import { entryUid } from './dhis2/entry-uid.js';
import { dhis2SettingsOf } from './dhis2/settings.js';

export interface IdentifierLookup {
  /** One request per source (`GET <base>/Patient?identifier=<value>`), its base URL without credentials or query. */
  lookups: string[];
  /** What to look up in the ledger with the id found: `Patient/<that id>`, `TrackedEntity/<its trackedEntity uid>`. */
  records: string[];
  /** The identifier systems the tracking id is written back under, on the subject Patient. */
  trackingSystems: string[];
  /** The identifiers staff hold, as the configured kinds of source keep them (for "Identifiers (…) are not searched"). */
  examples: string;
}

/**
 * `value` goes into the requests as given (URL-encode a value typed by someone; the admin page gives a
 * placeholder). Each kind of source is asked its own way: a DHIS2 server has no Patient endpoint, and keeps
 * an identifier as a tracked entity attribute, filtered within a programme. No source configured (a bridge
 * kept for `replay`): the FHIR form, with `<baseUrl>`.
 */
export function identifierLookup(sources: readonly SourceSettings[], value: string): IdentifierLookup {
  const fhir = sources.filter((s) => s.kind === 'fhir');
  const dhis2 = sources.filter((s) => s.kind === 'dhis2');
  const lookups: string[] = [];
  const records: string[] = [];
  if (fhir.length || !dhis2.length) {
    lookups.push(
      ...(fhir.length
        ? fhir.map((s) => `GET ${normalisedUrl(s.baseUrl)}/Patient?identifier=${value}`)
        : [`GET <baseUrl>/Patient?identifier=${value}`]),
    );
    records.push('Patient/<that id>');
  }
  if (dhis2.length) {
    // `filter=<attribute>:eq:<value>` is the same in 2.40 and later; the attribute is the one of the
    // identifier in that DHIS2 (the shipped mappings read the National identifier from AuPLng5hLbE).
    // Named when the source's mappings name exactly one identifier attribute (`codes.nationalId`).
    lookups.push(
      ...dhis2.map(
        (s) =>
          `GET ${normalisedUrl(s.baseUrl).replace(/\/api$/, '')}/api/tracker/trackedEntities?program=${dhis2SettingsOf(s).program}&filter=${identifierAttribute(s) ?? '<attribute uid>'}:eq:${value}`,
      ),
    );
    records.push('TrackedEntity/<its trackedEntity uid>');
  }
  const trackingSystems = [
    ...new Set(
      fhir.flatMap((s) =>
        s.writeBack?.enabled !== false && s.writeBack?.target === 'identifier' && s.writeBack.resource === 'subject'
          ? [s.writeBack.identifierSystem]
          : [],
      ),
    ),
  ];
  // A DHIS2-only bridge has no medical record number nor OpenMRS identifier to speak of.
  const examples =
    dhis2.length && !fhir.length
      ? 'a national identifier, or another tracked entity attribute'
      : 'a medical record number, an OpenMRS identifier';
  return { lookups, records, trackingSystems, examples };
}

/** A code set named for an identifier: `nationalId`, `patientId`, `uniqueIdentifier`, `nid`, `mrn`. */
function identifierSet(name: string): boolean {
  return /[a-z0-9](?:Id|ID|Identifier)$/.test(name) || /^(?:id|nid|mrn|identifier)$/i.test(name);
}

/**
 * The one tracked entity attribute the source's mappings name an identifier by (their code sets named for
 * one), read off the files as written; undefined when they name none, several, or cannot be read (loading
 * them says why). Only a hint: the mappings are not compiled here.
 */
function identifierAttribute(source: SourceSettings): string | undefined {
  const uids = new Set<string>();
  for (const entry of source.mappings ?? []) {
    let codes: unknown;
    try {
      codes = (parse(readFileSync(mappingFile(entry), 'utf8')) as { codes?: unknown } | null)?.codes;
    } catch {
      return undefined;
    }
    if (typeof codes !== 'object' || codes === null) continue;
    for (const [set, entries] of Object.entries(codes)) {
      if (!identifierSet(set) || !Array.isArray(entries)) continue;
      for (const item of entries) uids.add(entryUid(String(item)));
    }
  }
  const [only] = uids;
  return uids.size === 1 ? only : undefined;
}
