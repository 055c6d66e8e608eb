// A DATE field's order against today and against other date fields (`notAfter`, `notBefore` in a
// mapping). OpenCRVS accepts a notification with a birth in 2099 or a death before the birth, because
// NOTIFY does not run the form's validators; the registrar meets the error only when declaring. The
// bridge still sends the record (the notification is what starts the registration, and a registrar
// corrects it with the family), but says so in the ledger, where the hospital can fix it at the source.
import { utcInZone } from './fhirpath/functions.js';

/** Each bound is `today` or the id of another DATE field. */
export interface DateOrder {
  notAfter: string[];
  notBefore: string[];
}

// The latest calendar date anywhere (UTC+14): without the source's zone, a birth today in Kiribati is
// not "in the future".
const LATEST_OFFSET_MS = 14 * 3_600_000;

const DAY_MS = 86_400_000;

/**
 * The last UTC day read without a zone, and the instants it covers: asked once per record mapped with a
 * `notAfter: today`, a date formatted each time cost 2% of mapping a birth.
 */
let latestDay = { day: '', from: 0, to: 0 };

/** Today's date where the source is (its `timeZone`), else the latest date on earth right now. */
export function todayFor(timeZone: string | undefined, now = Date.now()): string {
  const inZone = timeZone ? utcInZone(new Date(now).toISOString(), timeZone) : undefined;
  if (inZone) return inZone;
  const latest = now + LATEST_OFFSET_MS;
  if (latest >= latestDay.from && latest < latestDay.to) return latestDay.day;
  const from = Math.floor(latest / DAY_MS) * DAY_MS;
  latestDay = { day: new Date(latest).toISOString().slice(0, 10), from, to: from + DAY_MS };
  return latestDay.day;
}

/**
 * Warnings (never values: the ledger's warnings are shown in the admin UI and logs count them) for the
 * date fields of `declaration` that break their order. A bound with no value in the declaration (the
 * father's birth date not known) is no check. Dates are 'YYYY-MM-DD', so text order is date order.
 */
export function dateOrderWarnings(
  fields: ReadonlyArray<{ id: string; dateOrder?: DateOrder }>,
  declaration: Record<string, unknown>,
  today: () => string,
): string[] {
  const warnings: string[] = [];
  for (const f of fields) {
    const value = declaration[f.id];
    if (!f.dateOrder || typeof value !== 'string') continue;
    for (const bound of f.dateOrder.notAfter) {
      const limit = bound === 'today' ? today() : declaration[bound];
      if (typeof limit === 'string' && value > limit) warnings.push(`${f.id} is after ${bound}${FIX}`);
    }
    for (const bound of f.dateOrder.notBefore) {
      const limit = bound === 'today' ? today() : declaration[bound];
      if (typeof limit === 'string' && value < limit) warnings.push(`${f.id} is before ${bound}${FIX}`);
    }
  }
  return warnings;
}

const FIX = '; sent as it is, the registrar must correct it before declaring';
