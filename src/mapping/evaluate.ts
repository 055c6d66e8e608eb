// The evaluate step on an assembled context: trigger (exclusions, evidence, and without evidence the
// records that cannot be mapped), fields, routing, then the declaration is validated against the form
// profile. Synchronous and allocation-light: it is what the mapping benchmark measures.
import { createHash } from 'node:crypto';
import type { RoutingSettings } from '../config/types.js';
import { type CompiledField, type CompiledMapping, outOfRange, rangeText } from './compile.js';
import type { MappingContext } from './context.js';
import { dateOrderWarnings, todayFor } from './date-order.js';
import { isOpenCrvsEmail } from './email.js';
import { ExpressionRuntimeError } from './fhirpath/expr.js';
import { calendarDate } from './fhirpath/functions.js';
import { meetsCondition } from './profile.js';
import { type RoutingOutcome, routeRecord } from './routing.js';
import { applyTransform, type FieldOutcome } from './transforms/index.js';
import { lookup } from './transforms/values.js';
import type { MapOptions, MapResult, RoutingResult } from './types.js';

/**
 * Why a mapping did not map: `excluded` (an `unless` rule) is more telling than "no evidence";
 * `noEvidence` means the record, as it is now, is no event of this type (it may once have been).
 */
export type Evaluated = {
  result: MapResult;
  excluded?: boolean;
  noEvidence?: boolean;
  /** Set by MappingSet.mapSubjectDetailed for a mapped or invalid result: the records its row keeps as read. */
  contextReads?: string[];
};

function truthy(result: unknown[]): boolean {
  return result.length > 0 && result[0] !== false;
}

/** One source expression's outcome: a value (with a warning, maybe), a value left out (skip), or an error. */
type SourceOutcome = (FieldOutcome & { from?: string }) | { value: unknown; warning: string };

/** Transforms that take every item (a name from several, the home address among several): no ambiguity. */
const TAKES_ALL = new Set(['name', 'address']);

/**
 * Whether an item is a Quantity with a comparator ('<', '<=', '>=', '>'; R5 adds 'ad'): a bound, not the value.
 * FHIR makes comparator a modifier element, so reading the number alone would send `< 500 g` as 500 g and
 * `>= 4` live births as QUADRUPLET. One check for every conversion and value map that reads a Quantity.
 */
function isBound(items: readonly unknown[]): boolean {
  for (const item of items) {
    if (typeof item !== 'object' || item === null) continue;
    const comparator = (item as { comparator?: unknown }).comparator;
    if (typeof comparator === 'string' && comparator !== '') return true;
  }
  return false;
}

function sourceValue(f: CompiledField, items: unknown[], from: string): SourceOutcome {
  // Left out like a partial date (a later source may give the value itself), without the value or the
  // comparator, which both say something about the person (a weight under some limit).
  if (isBound(items))
    return { skip: `${f.id}: left out: the source gives a bound (a Quantity with a comparator), not a value` };
  if (f.map) {
    const out = lookup(f.map, items);
    if ('unmapped' in out) return { error: out.unmapped, from };
    if ('ambiguous' in out) return { error: out.ambiguous, from };
    if (out.value !== null) return out;
    return { skip: `${f.id}: ${'warning' in out ? out.warning : `value map ${f.map.name} leaves this value out`}` };
  }
  const transform = f.transform ?? 'text';
  const out = applyTransform(transform, items, f.options);
  if ('error' in out) return { ...out, from };
  // An email address OpenCRVS refuses would fail the NOTIFY after the create, and the whole event with it:
  // like a postal address it cannot take, it is left out with a warning (without the value: personal data).
  if (f.field.type === 'EMAIL' && 'value' in out && !isOpenCrvsEmail(out.value))
    return { skip: `${f.id}: left out: not an email address OpenCRVS accepts` };
  // Two identifiers, two weights: the first was taken, which may be the wrong one (an EMR number sent as a
  // national ID). Said, not refused: the expression should choose (a where(), .first()).
  const different = 'value' in out && items.length > 1 && !TAKES_ALL.has(transform) ? distinct(items) : 1;
  if (different > 1)
    return { ...out, warning: `${f.id}: ${from} gave ${different} different values; the first was sent` };
  return out;
}

function distinct(items: unknown[]): number {
  return new Set(items.map((item) => (typeof item === 'object' ? JSON.stringify(item) : String(item)))).size;
}

/**
 * The first source that gives a usable value wins. One that finds something incomplete (a partial date,
 * a code the value map leaves out) does not end the search: a later source may hold it complete (a VRDR
 * death-date observation of `2024-05` before `Patient.deceasedDateTime`). One that finds a wrong value
 * (`2024-02-30`, a weight in cm, a code no value map knows) ends it: the record is invalid until the
 * source is corrected, since a later source's different value (the encounter's date for the birth
 * date) is no substitute for it. If none gives a value, the first skip's warning is reported.
 */
function fieldValue(f: CompiledField, ctx: MappingContext): SourceOutcome {
  const { subject, vars } = ctx;
  if (f.when && !truthy(f.when.evaluate(subject, vars))) return { skip: undefined };
  if (f.constant) return { value: f.constant.value };
  let skipped: { skip: string | undefined } | undefined;
  for (const e of f.from) {
    let items = e.evaluate(subject, vars);
    // DHIS2 keeps a cleared value as "": nothing given, not a malformed value.
    if (items[0] === '') items = items.filter((item) => item !== '');
    if (items.length === 0) continue;
    const out = sourceValue(f, items, e.text);
    if ('skip' in out) skipped ??= out;
    else if (f.range && 'value' in out && typeof out.value === 'number' && outOfRange(out.value, f.range)) {
      // Implausible (2.5 g for a birth weight, 35 kg: a unit or a decimal point wrong in the EMR): left out
      // with a warning rather than sent, or the record held back for it. A later source is no substitute:
      // this one is what the EMR holds, to be corrected there. The value is not said (personal data).
      return {
        skip: `${f.id}: left out: outside the range the mapping allows (${rangeText(f.range)}) once converted; check the value and its unit in the source`,
      };
    } else return out;
  }
  if (skipped?.skip !== undefined) return skipped;
  return f.default ? { value: f.default.value } : { skip: undefined };
}

/**
 * A field the form shows only when another has a value (mother.nid when mother.idType = NATIONAL_ID) would
 * reach OpenCRVS hidden from every registrar when this record's declaration does not give that value: it
 * is left out, with a warning (like an email address OpenCRVS refuses). Checked on the final declaration,
 * once every field and the routing are in (the other field may come later in the file, or be the place of
 * event; the field may be a facility field routing filled), and again after a removal, which may hide a
 * field in turn. Only mapping constants are named, never the record's data.
 */
function hiddenFieldsLeftOut(mapping: CompiledMapping, declaration: Record<string, unknown>): string[] {
  const warnings: string[] = [];
  for (let removed = true; removed; ) {
    removed = false;
    for (const f of mapping.conditionalFields) {
      if (!(f.id in declaration)) continue;
      const unmet = f.shownWhen.find((c) => !meetsCondition(declaration[c.field], c));
      if (!unmet) continue;
      delete declaration[f.id];
      warnings.push(
        `${f.id}: left out: the form shows it only when ${unmet.term} = ${unmet.value}, which this record does not give (no registrar would see it)`,
      );
      removed = true;
    }
  }
  return warnings;
}

/**
 * Whether the routed facility is the record's, as its final declaration says: not when the data states the
 * event happened elsewhere, nor when every facility field it filled was left out (the form would hide
 * them). Otherwise the payload would carry, and its hash count, a facility the declaration does not name,
 * and the worker would look up (facilityUnchecked) one whose answer cannot change what is sent. A facility
 * not resolved yet, so in no field (unchecked, not a UUID), stays marked: once looked up it may fill them.
 */
function facilityDeclared(
  mapping: CompiledMapping,
  routed: RoutingOutcome,
  declaration: Record<string, unknown>,
  elsewhere: boolean,
): boolean {
  const { facility, facilityUnchecked } = routed.routing;
  if (facility === undefined && facilityUnchecked === undefined) return true; // nothing to take back
  if (elsewhere) return false;
  const ids = mapping.routing.facilityFields;
  if (facility === undefined || ids.length === 0) return true;
  for (const id of ids) if (id in declaration) return true;
  return false;
}

function withoutFacility(routing: RoutingResult): RoutingResult {
  const { facility: _facility, facilityUnchecked: _unchecked, ...rest } = routing;
  return rest;
}

/** The first `unless` rule of this kind that holds (a loop, not closures: this runs for every subject). */
function exclusionRule(mapping: CompiledMapping, ctx: MappingContext, withEvidence: boolean) {
  for (const rule of mapping.unless) {
    if (rule.withEvidence === withEvidence && truthy(rule.expr.evaluate(ctx.subject, ctx.vars))) return rule;
  }
  return undefined;
}

/**
 * The event's date for the source's go-live to be compared with (MapResult.eventDate): the declaration's
 * (the form's dateOfEvent field), else the first year or year-month the field's sources give. A partial
 * date is left out of the declaration, but it still dates the event enough to tell one born in 2024-06
 * from one after a go-live of 2025 (OpenMRS sends a young child's estimated birth date so): undated, such a
 * record was kept as a dead row, then delivered as a new birth once the EMR completed the date.
 */
function eventDateOf(
  mapping: CompiledMapping,
  ctx: MappingContext,
  declaration: Record<string, unknown>,
): { eventDate?: string } {
  const id = mapping.profile.dateOfEvent;
  if (!id) return {};
  const given = declaration[id];
  if (typeof given === 'string') return { eventDate: given };
  const field = mapping.fields.find((f) => f.id === id);
  if (!field || (field.when && !truthy(field.when.evaluate(ctx.subject, ctx.vars)))) return {};
  for (const e of field.from) {
    let items: unknown[];
    try {
      items = e.evaluate(ctx.subject, ctx.vars);
    } catch {
      continue; // the field's own evaluation says what is wrong with the record
    }
    for (const item of items) {
      const full = calendarDate(item, mapping.timeZone);
      if (full) return { eventDate: full };
      const partial = typeof item === 'string' ? /^\d{4}(?:-\d{2})?$/.exec(item) : null;
      if (partial) return { eventDate: partial[0] };
    }
  }
  return {};
}

/** The first `invalid` rule that holds. */
function invalidRule(mapping: CompiledMapping, ctx: MappingContext) {
  for (const rule of mapping.invalid) if (truthy(rule.expr.evaluate(ctx.subject, ctx.vars))) return rule;
  return undefined;
}

export function evaluateMapping(
  mapping: CompiledMapping,
  ctx: MappingContext,
  settings: RoutingSettings | undefined,
  options: MapOptions = {},
): Evaluated {
  const { subject, vars, subjectRef } = ctx;
  const base = { mappingId: mapping.id, eventType: mapping.eventType, subjectRef };
  const before = exclusionRule(mapping, ctx, false);
  if (before) return { result: { status: 'skipped', ...base, reason: before.reason }, excluded: true };
  const evidence = mapping.when.find((w) => truthy(w.expr.evaluate(subject, vars)));
  if (!evidence) {
    // A record that looks like this event but whose data cannot show it (a birth date without its day,
    // which no evidence rule can compare) is kept as invalid with the reason, not dropped as "no evidence":
    // an engineer asking whether it arrived finds it, and a corrected version requeues the row. Only
    // without evidence: evidence that needs no date (a birth document) still notifies it.
    const unmappable = invalidRule(mapping, ctx);
    if (unmappable) {
      // The rules for records that would otherwise be notified apply to these too: a merged duplicate is
      // skipped as merged, not kept for a correction no one will make on it.
      const excluded = exclusionRule(mapping, ctx, true);
      if (excluded) return { result: { status: 'skipped', ...base, reason: excluded.reason }, excluded: true };
      const errors = [{ field: 'trigger', message: unmappable.reason }];
      const eventDate = eventDateOf(mapping, ctx, {});
      return { result: { status: 'invalid', ...base, sourceRef: subjectRef, errors, ...eventDate } };
    }
    const checked = mapping.when.map((w) => w.evidence).join('; ');
    return {
      result: { status: 'skipped', ...base, reason: `no ${mapping.eventType} evidence (checked: ${checked})` },
      // Only a complete context shows the record is no event: with the read budget spent, the evidence
      // may be in what was not read, and an unsent row must not be withdrawn on that.
      ...(ctx.incomplete ? {} : { noEvidence: true }),
    };
  }
  // Rules for records that would otherwise be notified (a merged duplicate): checked only now, so the
  // many records that are no event at all never reach the ledger as exclusions.
  const after = exclusionRule(mapping, ctx, true);
  if (after) return { result: { status: 'skipped', ...base, reason: after.reason }, excluded: true };

  const declaration: Record<string, unknown> = {};
  const errors: Array<{ field: string; message: string }> = [];
  const warnings = [...ctx.warnings];
  for (const f of mapping.fields) {
    let out: ReturnType<typeof fieldValue>;
    try {
      out = fieldValue(f, ctx);
    } catch (err) {
      // One field's expression failing on this record's data makes the record invalid (kept, with the
      // field named), never the whole pass: the other records of the page map on.
      if (!(err instanceof ExpressionRuntimeError)) throw err;
      errors.push({ field: f.id, message: err.message });
      continue;
    }
    if ('value' in out) {
      declaration[f.id] = out.value;
      if ('warning' in out) warnings.push(out.warning);
    } else if ('error' in out) errors.push({ field: f.id, message: `source value ${out.error} (from ${out.from})` });
    else if (out.skip) warnings.push(out.skip.startsWith(f.id) ? out.skip : `${f.id}: ${out.skip}`);
  }

  // What the fields leave out without a word (a mother not chosen between two women): the mapping says it.
  // A rule failing on this record's data (several dates for a daysAfter) says so instead: a warning is no
  // reason to hold the record back. The message names the expression's problem, never the data.
  mapping.warnings.forEach((rule, i) => {
    try {
      if (truthy(rule.expr.evaluate(subject, vars))) warnings.push(rule.warning);
    } catch (err) {
      if (!(err instanceof ExpressionRuntimeError)) throw err;
      warnings.push(`warnings[${i}] could not be checked: ${err.message}`);
    }
  });

  let today: string | undefined;
  warnings.push(...dateOrderWarnings(mapping.fields, declaration, () => (today ??= todayFor(mapping.timeZone))));

  const routed = routeRecord(mapping, subject, vars, settings, options);
  warnings.push(...routed.warnings);
  if (routed.error) errors.push(routed.error);
  // The place-of-event option set by the data wins over the routing default; facility ids always come
  // from routing, because only routing knows OpenCRVS's location ids. When the data says the event was
  // not at a facility (a death at home after a hospital visit), a routed facility would contradict it.
  const place = mapping.routing.placeOfEvent;
  const statedPlace = place ? declaration[place.field] : undefined;
  const elsewhere = place !== undefined && statedPlace !== undefined && statedPlace !== place.value;
  if (elsewhere) {
    if (routed.routing.facility)
      warnings.push(`${place.field} is ${String(statedPlace)} in the source: the routed facility is not sent`);
  } else {
    for (const [id, value] of Object.entries(routed.fields)) {
      if (id === place?.field && statedPlace !== undefined) continue;
      declaration[id] = value;
    }
  }

  warnings.push(...hiddenFieldsLeftOut(mapping, declaration));
  const routing = facilityDeclared(mapping, routed, declaration, elsewhere)
    ? routed.routing
    : withoutFacility(routed.routing);

  if (!mapping.validateDeclaration(declaration)) {
    for (const e of mapping.validateDeclaration.errors ?? []) {
      const field = e.instancePath.split('/')[1]?.replace(/~1/g, '/').replace(/~0/g, '~') ?? '(declaration)';
      const detail = e.instancePath.split('/').slice(2).join('.');
      const allowed =
        e.keyword === 'enum' ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')})` : '';
      errors.push({ field, message: `${detail ? `${detail} ` : ''}${e.message ?? 'is invalid'}${allowed}` });
    }
  }
  const sourceRoot = evidence.source?.evaluate(subject, vars)[0];
  const source =
    sourceRoot && typeof sourceRoot === 'object' && 'resourceType' in sourceRoot
      ? (sourceRoot as { resourceType: string; id?: string; meta?: { versionId?: string } })
      : subject;
  const sourceRef = source.id ? `${source.resourceType}/${source.id}` : subjectRef;
  const eventDate = eventDateOf(mapping, ctx, declaration);
  // The evidence names the row of a refused record too: "did Encounter/9 arrive?" must find it.
  if (errors.length) return { result: { status: 'invalid', ...base, sourceRef, errors, ...eventDate } };
  // Key order is fixed by the mapping (fields in file order, then routing fields), so plain JSON is stable.
  const payloadHash = createHash('sha256')
    .update(JSON.stringify([mapping.eventType, routing.office ?? null, routing.facility ?? null, declaration]))
    .digest('hex');
  return {
    result: {
      status: 'mapped',
      ...base,
      sourceRef,
      sourceVersion: typeof source.meta?.versionId === 'string' ? source.meta.versionId : undefined,
      payloadHash,
      declaration,
      ...eventDate,
      routing,
      evidence: evidence.evidence,
      warnings,
    },
  };
}
