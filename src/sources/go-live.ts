// The source's go-live (`poll.since`, or the start `sinceDays` chose) bounds which events are notified, not
// only which changes are read. A poll reads what changed after it, but an EMR changes old records every day:
// a returning under-5 child's immunization visit, a phone number added to a child born years ago. The
// mapping finds the birth in that record as it finds any other, so each such change sent a birth registered
// on paper long ago as a new (late) declaration. An event dated before the go-live is recorded as skipped
// instead, whichever path read it (a poll, a notification, `sync --since`), and so is a record the ledger
// holds whose notification never reached OpenCRVS (SourcePipeline.beforeGoLive).

/** Formatters by IANA zone name: building one costs far more than using it. */
const dayFormats = new Map<string, Intl.DateTimeFormat>();

/** The calendar date in `timeZone` of the instant `ms`. */
function dateInZone(ms: number, timeZone: string): string {
  let format = dayFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    dayFormats.set(timeZone, format);
  }
  const parts = Object.fromEntries(format.formatToParts(ms).map((p) => [p.type, p.value]));
  return `${(parts.year ?? '').padStart(4, '0')}-${parts.month}-${parts.day}`;
}

/**
 * The go-live's date (`YYYY-MM-DD`), undefined for none. The dates it is compared with are local: a birth
 * on the 1st at 01:00 in Lusaka is born on the 1st. So the start `sinceDays` chose (firstSyncStart, an
 * instant written in UTC), or a `poll.since` written as an instant (with `Z` or an offset), is that
 * instant's date where the source is (`timeZone`, SourceSettings.timeZone): read as the UTC date, the
 * start 23:30Z of the 31st in Lusaka skipped the births of the 1st there. Without a zone, and for a
 * `poll.since` written as a date or a local date-time, the date as written.
 */
export function goLiveDate(start: string | undefined, timeZone?: string): string | undefined {
  const key = `${timeZone ?? ''}\n${start ?? ''}`;
  if (goLiveDates.has(key)) return goLiveDates.get(key);
  if (goLiveDates.size >= 64) goLiveDates.clear();
  const date = goLiveDateOf(start, timeZone);
  goLiveDates.set(key, date);
  return date;
}

/**
 * goLiveDate by zone and start: the pipeline asks it of every record that has an event date, and the date
 * in a zone is a formatting (the start only changes when `poll.since` or the ledger's first start does).
 */
const goLiveDates = new Map<string, string | undefined>();

function goLiveDateOf(start: string | undefined, timeZone?: string): string | undefined {
  const date = start?.slice(0, 10);
  if (start === undefined || date === undefined || !/^\d{4}-\d{2}-\d{2}$/.test(date)) return undefined;
  if (timeZone && /T.*(?:Z|[+-]\d{2}:?\d{2})$/i.test(start)) {
    const ms = Date.parse(start);
    if (!Number.isNaN(ms)) return dateInZone(ms, timeZone);
  }
  return date;
}

/**
 * Why an event dated `eventDate` is not notified by a source that went live on `goLive` (goLiveDate), or
 * undefined when it is. Only an event dated before the go-live's day: a date of birth or death has no time of
 * day, and one on the go-live day itself may have been recorded by neither process, so it is sent. A partial
 * date counts when it is wholly before: a year-month (OpenMRS's estimated birth date of a young child,
 * `2024-06`) before the go-live's month, a year before its year; one that may be the go-live's month is
 * sent. An event without a date is not this function's to judge (undatedDeath).
 */
export function beforeGoLive(
  event: { eventType: string; eventDate?: string },
  goLive: string | undefined,
): string | undefined {
  const { eventType, eventDate } = event;
  if (goLive === undefined || eventDate === undefined || !/^\d{4}(?:-\d{2}(?:-\d{2})?)?$/.test(eventDate))
    return undefined;
  // A partial date against as much of the go-live's date: '2024-12' < '2025-01', and '2025-01' is not.
  if (eventDate >= goLive.slice(0, eventDate.length)) return undefined;
  const what = eventType === 'birth' ? 'born' : eventType === 'death' ? 'died' : `${eventType} dated`;
  return `${what} before the source's go-live ${goLive}: registered otherwise`;
}

/** What every reason beforeGoLive gives contains: what the ledger is searched by (goLiveRemoved). */
export const GO_LIVE_SKIP_MARK = " before the source's go-live ";

/**
 * The go-live a skipped row's reason (beforeGoLive's) was decided against, else undefined: such a row, read
 * again once the go-live is moved earlier (or removed), is sent, and the pass says how many
 * (SourcePipeline.commit). The date tells that case from a record whose own date was corrected, which is
 * sent under the same go-live and is no sign of a moved one.
 */
export function skippedBeforeGoLive(reason: string | null | undefined): string | undefined {
  return reason?.match(/^(?:born|died|\S+ dated) before the source's go-live (\d{4}-\d{2}-\d{2}): /)?.[1];
}

/**
 * Why a death the mapping gives no date for is not notified by a source with a go-live, or undefined. The
 * shipped FHIR mapping takes `Patient.deceasedBoolean = true` alone as a death (an EMR that records no
 * date), and an EMR sets that flag on any record: a patient last seen in 2019, found to have died long
 * ago. Such a death cannot be told from one before the go-live, and sent as a new death it would be a
 * second registration of one recorded on paper. It is kept as a dead row with this reason instead, visible
 * and alerted on, not skipped silently: the date entered in the EMR sends it (the next poll reads the
 * change), or dates it before the go-live. A birth without a date is sent: the mappings find one only by a
 * birth document, written at the birth, not by a flag set later on an old record.
 */
export function undatedDeath(event: { eventType: string; eventDate?: string }, goLive: string | undefined) {
  if (goLive === undefined || event.eventType !== 'death' || event.eventDate !== undefined) return undefined;
  return `no date of death: it cannot be told from a death before the source's go-live ${goLive}; enter the date of death in the EMR and the next poll sends it (or records it skipped, if before the go-live)`;
}
