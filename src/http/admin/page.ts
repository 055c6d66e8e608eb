// The admin page: static HTML and CSS kept as string constants so the build (which copies only .ts
// to dist/) ships them with no extra step. Everything dynamic is filled in by page-script.ts from
// the JSON API, with textContent only.
import type { IdentifierLookup } from '../../sources/identifier-lookup.js';
import { WRITE_BACK_DETAIL, WRITE_BACK_SECTION, WRITE_BACK_STYLE } from './page-write-backs.js';

/** Text made safe inside an HTML attribute or element (the pages built here, this one and logout's). */
export function escapeAttribute(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * The Find help's way to a record's id: the configured sources' own requests (`ledger --find` gives the
 * same), or without them (a target that does not say) the general form.
 */
function askTheSource(lookup: IdentifierLookup | undefined): string {
  if (!lookup) {
    return `Ask the source for the record's id with
        <code>GET &lt;baseUrl&gt;/Patient?identifier=&lt;value&gt;</code> (a DHIS2 source:
        <code>GET &lt;baseUrl&gt;/api/tracker/trackedEntities?program=&lt;program&gt;&amp;filter=&lt;attribute uid&gt;:eq:&lt;value&gt;</code>,
        then find TrackedEntity/&lt;its uid&gt;); once delivered, that Patient also
        carries the tracking ID where the bridge writes it back (identifier system
        <code>http://opencrvs.org/tracking-id</code> by default).`;
  }
  const code = (text: string) => `<code>${escapeAttribute(text)}</code>`;
  const { lookups, records, trackingSystems } = lookup;
  const tracking = trackingSystems.length
    ? `; once delivered, that Patient also carries the OpenCRVS tracking ID, written back as its identifier of system ${trackingSystems.map(code).join(' or ')}`
    : '';
  return `Ask the source for the record's id (${lookups.map(code).join(', or ')}) and find ${records.map(escapeAttribute).join(' or ')}${tracking}.`;
}

/**
 * `base` is the mount path of the admin router (`/admin`), so links work with or without a trailing slash.
 * `lookup`: the Find help's requests to the configured sources, with the placeholder `<value>`.
 */
export function renderPage(base: string, lookup?: IdentifierLookup): string {
  const b = escapeAttribute(base);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>opencrvs-bridge admin</title>
<link rel="stylesheet" href="${b}/app.css">
<script src="${b}/app.js" defer></script>
</head>
<body data-api="${b}/api">
<header class="top">
  <h1>opencrvs-bridge admin</h1>
  <div class="controls">
    <label><input type="checkbox" id="auto-refresh" checked> Auto-refresh every 5 s</label>
    <button type="button" id="refresh-now">Refresh now</button>
    <span id="refresh-status" class="muted">Loading…</span>
    <a href="${b}/logout" id="logout">Log out</a>
  </div>
</header>
<div id="hold-banner" class="banner hold" role="alert" hidden></div>
<div id="message" class="banner" role="status" aria-live="polite" hidden></div>
<main class="layout">
  <div class="column">
    <section aria-labelledby="summary-h">
      <h2 id="summary-h">Summary</h2>
      <p id="summary-line" class="muted"></p>
      <div class="scroll"><table id="counts"><caption class="sr-only">Events by event type and state</caption>
        <thead><tr><th scope="col">Event type</th></tr></thead><tbody></tbody></table></div>
    </section>
    <section aria-labelledby="sources-h">
      <h2 id="sources-h">Sources</h2>
      <div class="scroll"><table id="sources"><caption class="sr-only">Source status</caption>
        <thead><tr><th scope="col">Source</th><th scope="col">Kind</th><th scope="col">Watermarks</th>
          <th scope="col">Last poll</th><th scope="col">Failures in a row</th><th scope="col">Last error</th>
          <th scope="col">Subscription</th></tr></thead><tbody></tbody></table></div>
    </section>
    <section aria-labelledby="dead-h">
      <h2 id="dead-h">Dead letters</h2>
      <p class="muted">Events the mapping refused, OpenCRVS refused for good, or whose retries ran out. Fix the
        cause, then replay: the record is read from its source and mapped again, and the row goes back in the
        queue with a fresh retry budget. Dismiss one that must never go (a duplicate, a test record), with
        the reason: it is skipped, and nothing is sent to or withdrawn from OpenCRVS.</p>
      <p><button type="button" id="replay-all">Replay all dead</button></p>
      <p id="dead-more" class="muted" hidden>Only the first 200 are listed: filter the Events table by the state
        dead to see them all. Replay all dead replays every one.</p>
      <div class="scroll"><table id="dead"><caption class="sr-only">Dead letters</caption>
        <thead><tr><th scope="col">ID</th><th scope="col">Source</th><th scope="col">Event type</th>
          <th scope="col">Source reference</th><th scope="col">Error</th><th scope="col">Attempts</th>
          <th scope="col">Updated</th><th scope="col">Action</th></tr></thead><tbody></tbody></table></div>
    </section>
    <section aria-labelledby="events-h">
      <h2 id="events-h">Events</h2>
      <form id="filters" class="filters">
        <label for="f-find">Find</label>
        <input id="f-find" name="find" type="search" autocomplete="off" maxlength="200"
          placeholder="Patient/123, 123 or tracking ID" title="A record of the source (Patient/123, Encounter/9), its id alone, or an OpenCRVS tracking ID; not an identifier such as a medical record number">
        <label for="f-state">State</label>
        <select id="f-state" name="state"><option value="">Any</option></select>
        <label for="f-type">Event type</label>
        <input id="f-type" name="eventType" list="event-types" autocomplete="off">
        <datalist id="event-types"></datalist>
        <label for="f-source">Source</label>
        <input id="f-source" name="source" list="source-ids" autocomplete="off">
        <datalist id="source-ids"></datalist>
        <label for="f-since">Updated from</label>
        <input id="f-since" name="since" type="date">
        <label for="f-until">Updated to</label>
        <input id="f-until" name="until" type="date">
        <label><input id="f-updated" name="updatedAfterNotification" type="checkbox"> Changed after notification</label>
        <button type="submit">Apply</button>
        <button type="reset">Clear</button>
      </form>
      <p id="find-help" class="muted">Find takes a record of the source (the child's or the deceased's
        Patient/123, or the Encounter that showed the event), its id alone, or an OpenCRVS tracking ID; not the
        mother's record. Identifiers (${escapeAttribute(lookup?.examples ?? 'a medical record number, an OpenMRS identifier')}) are not searched: they
        are personal data, which the ledger does not index. ${askTheSource(lookup)}</p>
      <div class="scroll"><table id="events"><caption class="sr-only">Ledger events, newest first</caption>
        <thead><tr><th scope="col">ID</th><th scope="col">Source</th><th scope="col">Event type</th>
          <th scope="col">Source reference</th><th scope="col">State</th><th scope="col">Attempts</th>
          <th scope="col">Tracking ID</th><th scope="col">Last error</th><th scope="col">Updated</th></tr></thead>
        <tbody></tbody></table></div>
      <nav class="pager" aria-label="Event pages">
        <button type="button" id="prev-page">Previous</button>
        <span id="page-info"></span>
        <button type="button" id="next-page">Next</button>
      </nav>
    </section>${WRITE_BACK_SECTION}
  </div>
  <aside id="detail" class="detail" aria-labelledby="detail-h" hidden>
    <div class="detail-head">
      <h2 id="detail-h">Event</h2>
      <button type="button" id="detail-close">Close</button>
    </div>
    <p id="detail-actions"></p>
    <dl id="detail-fields"></dl>
    <h3>Attempts</h3>
    <div class="scroll"><table id="attempts"><caption class="sr-only">Delivery attempts</caption>
      <thead><tr><th scope="col">#</th><th scope="col">Step</th><th scope="col">Outcome</th>
        <th scope="col">Started</th><th scope="col">Next run</th></tr></thead>
      <tbody></tbody></table></div>${WRITE_BACK_DETAIL}
    <h3>Declaration</h3>
    <p id="declaration-note" class="muted"></p>
    <pre id="declaration" hidden></pre>
  </aside>
</main>
</body>
</html>
`;
}

export const PAGE_STYLE = `
:root { color-scheme: light; --fg: #1b1f23; --muted: #57606a; --line: #d0d7de; --bg: #ffffff; --panel: #f6f8fa;
  --accent: #0b5cad; --bad: #a40e26; --bad-bg: #ffebe9; --warn: #7d4e00; --warn-bg: #fff8c5; --ok: #116329;
  --ok-bg: #dafbe1; --info-bg: #ddf4ff; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  background: var(--bg); }
h1 { font-size: 1.35rem; margin: 0; }
h2 { font-size: 1.15rem; margin: 1.4rem 0 0.5rem; }
h3 { font-size: 1rem; margin: 1rem 0 0.4rem; }
.top { display: flex; flex-wrap: wrap; gap: 0.5rem 1.5rem; align-items: center; justify-content: space-between;
  padding: 0.8rem 1.2rem; border-bottom: 1px solid var(--line); background: var(--panel); }
.controls { display: flex; flex-wrap: wrap; gap: 0.4rem 1rem; align-items: center; }
.muted { color: var(--muted); }
.banner { margin: 0.8rem 1.2rem 0; padding: 0.6rem 0.9rem; border-radius: 6px; border: 1px solid var(--line);
  background: var(--info-bg); }
.banner.hold, .banner.error { background: var(--bad-bg); border-color: var(--bad); color: var(--bad); font-weight: 600; }
.layout { display: grid; grid-template-columns: minmax(0, 1fr); gap: 1.2rem; padding: 0 1.2rem 2rem; }
@media (min-width: 1200px) {
  .layout.with-detail { grid-template-columns: minmax(0, 1fr) minmax(400px, 36%); }
  .detail { position: sticky; top: 0.8rem; align-self: start; max-height: calc(100vh - 1.6rem); overflow: auto; }
}
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; vertical-align: top; padding: 0.35rem 0.55rem; border-bottom: 1px solid var(--line); }
thead th { background: var(--panel); font-weight: 600; white-space: nowrap; }
td.time { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.err { max-width: 32rem; overflow-wrap: anywhere; }
tr.attempt td { border-bottom: none; }
tr.attempt-error td { color: var(--bad); font-size: 0.85rem; padding-top: 0; }
.outcome-dead { background: var(--bad-bg); color: var(--bad); border-color: var(--bad); }
.outcome-delivered { background: var(--ok-bg); color: var(--ok); border-color: #4ac26b; }
.outcome-retry, .outcome-held { background: var(--warn-bg); color: var(--warn); border-color: #d4a72c; }
td.mono, dd.mono, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.85em; }
.badge { display: inline-block; padding: 0.05rem 0.5rem; border-radius: 999px; font-size: 0.8rem; font-weight: 600;
  background: var(--panel); border: 1px solid var(--line); white-space: nowrap; }
.state-dead { background: var(--bad-bg); color: var(--bad); border-color: var(--bad); }
.state-failed { background: var(--warn-bg); color: var(--warn); border-color: #d4a72c; }
.state-delivered { background: var(--ok-bg); color: var(--ok); border-color: #4ac26b; }
.state-delivered-pending, .state-pending, .state-delivering { background: var(--info-bg); color: var(--accent);
  border-color: #54aeff; }
button { font: inherit; padding: 0.25rem 0.75rem; border-radius: 6px; border: 1px solid var(--line);
  background: #fff; color: var(--fg); cursor: pointer; }
button:hover { background: var(--panel); }
button:focus-visible, input:focus-visible, select:focus-visible, a:focus-visible { outline: 3px solid #54aeff;
  outline-offset: 1px; }
button:disabled { opacity: 0.6; cursor: progress; }
button.link { border: none; background: none; color: var(--accent); text-decoration: underline; padding: 0; }
#replay-all, button.replay { border-color: var(--accent); color: var(--accent); font-weight: 600; }
button.dismiss { border-color: var(--bad); color: var(--bad); }
td.actions { white-space: nowrap; }
td.actions button + button { margin-left: 0.4rem; }
.filters { display: flex; flex-wrap: wrap; gap: 0.4rem 0.6rem; align-items: center; margin-bottom: 0.6rem; }
.filters label { font-weight: 600; font-size: 0.9rem; }
.filters input, .filters select { font: inherit; padding: 0.2rem 0.4rem; border: 1px solid var(--line);
  border-radius: 6px; max-width: 12rem; }
.pager { display: flex; gap: 0.8rem; align-items: center; margin-top: 0.6rem; }
.detail { border: 1px solid var(--line); border-radius: 8px; padding: 0 1rem 1rem; background: #fff; margin-top: 1.4rem; }
.detail-head { display: flex; justify-content: space-between; align-items: center; }
.detail dl { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 0.25rem 0.8rem; margin: 0; }
.detail dt { font-weight: 600; color: var(--muted); }
.detail dd { margin: 0; overflow-wrap: anywhere; }
pre { background: var(--panel); padding: 0.6rem; border-radius: 6px; overflow: auto; font-size: 0.85rem; }
ul.plain { list-style: none; margin: 0; padding: 0; }
.sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0, 0, 0, 0); border: 0; }
${WRITE_BACK_STYLE}`;
