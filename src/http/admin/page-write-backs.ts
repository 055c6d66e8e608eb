// The write-back part of the admin page: its section, its block in the event detail, its style and its
// script. The script is spliced into page-script.ts's closure (it uses that file's helpers: el, cell,
// clear, call, fmtTime, idButton, emptyRow, showMessage, refresh) and follows the same rules: values go in
// through textContent only. (No backticks or dollar-brace sequences in the script: it sits in a template.)

export const WRITE_BACK_SECTION = `
    <section aria-labelledby="wb-h">
      <h2 id="wb-h">Write-backs</h2>
      <p class="muted">Whether the OpenCRVS tracking ID got back to the source record after delivery.
        An abandoned job stays abandoned: fix the cause (see its error), then re-queue it.</p>
      <p id="wb-counts-line" class="muted"></p>
      <form id="wb-filters" class="filters">
        <label for="wb-outcome">Outcome</label>
        <select id="wb-outcome" name="outcome"><option value="">Any</option>
          <option value="not-written">Not written (pending or abandoned)</option>
          <option value="pending">pending</option><option value="written">written</option>
          <option value="already">already</option><option value="abandoned">abandoned</option></select>
        <label for="wb-source">Source</label>
        <input id="wb-source" name="source" list="wb-source-ids" autocomplete="off">
        <datalist id="wb-source-ids"></datalist>
        <button type="submit">Apply</button>
        <button type="reset">Clear</button>
      </form>
      <div class="scroll"><table id="write-backs"><caption class="sr-only">Write-back jobs, newest first</caption>
        <thead><tr><th scope="col">Event</th><th scope="col">Source</th><th scope="col">Outcome</th>
          <th scope="col">Attempts</th><th scope="col">Next attempt</th><th scope="col">Tracking ID</th>
          <th scope="col">Last error</th><th scope="col">Created</th><th scope="col">Updated</th>
          <th scope="col">Action</th></tr></thead><tbody></tbody></table></div>
      <nav class="pager" aria-label="Write-back pages">
        <button type="button" id="wb-prev-page">Previous</button>
        <span id="wb-page-info"></span>
        <button type="button" id="wb-next-page">Next</button>
      </nav>
    </section>`;

export const WRITE_BACK_DETAIL = `
    <h3>Write-back</h3>
    <p id="detail-wb-note" class="muted"></p>
    <dl id="detail-wb"></dl>`;

export const WRITE_BACK_STYLE = `
.wb-written, .wb-already { background: var(--ok-bg); color: var(--ok); border-color: #4ac26b; }
.wb-pending { background: var(--info-bg); color: var(--accent); border-color: #54aeff; }
.wb-abandoned { background: var(--bad-bg); color: var(--bad); border-color: var(--bad); }
button.requeue { border-color: var(--accent); color: var(--accent); font-weight: 600; }
`;

export const WRITE_BACK_SCRIPT = `
  var WB_PAGE_SIZE = 50;
  var wbView = { offset: 0, hasMore: false, filters: {} };

  function wbBadge(outcome) { return el('span', outcome, 'badge wb-' + outcome); }

  function wbQuery() {
    var params = new URLSearchParams();
    Object.keys(wbView.filters).forEach(function (k) { if (wbView.filters[k]) params.set(k, wbView.filters[k]); });
    params.set('limit', String(WB_PAGE_SIZE));
    params.set('offset', String(wbView.offset));
    return params.toString();
  }

  function requeueButton(rowId) {
    var button = el('button', 'Re-queue', 'requeue');
    button.type = 'button';
    button.setAttribute('aria-label', 'Re-queue the write-back of event ' + rowId);
    button.addEventListener('click', function () { requeueWriteBack(rowId, button); });
    return button;
  }

  async function requeueWriteBack(rowId, button) {
    button.disabled = true;
    try {
      await call('POST', '/write-backs/' + rowId + '/requeue');
      showMessage('The write-back of event ' + rowId + ' is due again.', false);
    } catch (err) {
      showMessage('Re-queue of the write-back of event ' + rowId + ' failed: ' + err.message, true);
    }
    await refresh();
  }

  function renderWriteBackCounts(summary) {
    var line = $('wb-counts-line');
    if (!summary || !summary.enabled) { line.textContent = 'Write-back is not configured for any source.'; return; }
    var o = summary.byOutcome;
    line.textContent = o.written + ' written, ' + o.already + ' already held the ID, ' + o.pending + ' pending, ' +
      o.abandoned + ' abandoned' + (summary.sources.length ? ' (sources: ' + summary.sources.join(', ') + ')' : '') + '.';
    var list = $('wb-source-ids');
    clear(list);
    summary.sources.forEach(function (s) { var opt = el('option'); opt.value = s; list.appendChild(opt); });
  }

  function renderWriteBacks(page) {
    var tbody = $('write-backs').tBodies[0];
    clear(tbody);
    wbView.hasMore = page.hasMore;
    if (!page.enabled) emptyRow(tbody, 10, 'Write-back is not configured for any source.');
    else if (page.jobs.length === 0) emptyRow(tbody, 10, 'No write-back jobs match.');
    page.jobs.forEach(function (j) {
      var tr = el('tr');
      tr.setAttribute('data-row-id', j.rowId);
      cell(tr).appendChild(idButton(j.rowId));
      cell(tr, j.sourceId);
      cell(tr).appendChild(wbBadge(j.outcome));
      cell(tr, j.attempts, 'num');
      cell(tr, fmtTime(j.nextAttemptAt), 'time');
      cell(tr, j.trackingId, 'mono');
      cell(tr, j.lastError || (j.note ? 'Note: ' + j.note : ''), 'err');
      cell(tr, fmtTime(j.createdAt), 'time');
      cell(tr, fmtTime(j.updatedAt), 'time');
      var action = cell(tr);
      if (j.outcome === 'abandoned') action.appendChild(requeueButton(j.rowId));
      tbody.appendChild(tr);
    });
    var first = page.jobs.length ? wbView.offset + 1 : 0;
    $('wb-page-info').textContent = 'Showing ' + first + '–' + (wbView.offset + page.jobs.length);
    $('wb-prev-page').disabled = wbView.offset === 0;
    $('wb-next-page').disabled = !page.hasMore;
  }

  function renderDetailWriteBack(job) {
    var dl = $('detail-wb');
    clear(dl);
    $('detail-wb-note').textContent = job ? '' :
      'No write-back job: write-back is off for this source, or the event has no tracking ID yet.';
    if (!job) return;
    dl.appendChild(el('dt', 'Outcome'));
    var dd = el('dd');
    dd.appendChild(wbBadge(job.outcome));
    if (job.outcome === 'abandoned') { dd.appendChild(document.createTextNode(' ')); dd.appendChild(requeueButton(job.rowId)); }
    dl.appendChild(dd);
    field(dl, 'Written to', job.target || 'write-back is not configured for this source now');
    field(dl, job.outcome === 'pending' || job.outcome === 'abandoned' ? 'Tracking ID to write' : 'Tracking ID written',
      job.trackingId, true);
    field(dl, 'Note', job.note);
    if (job.earlierTrackingIds && job.earlierTrackingIds.length)
      field(dl, 'Earlier tracking IDs of this event', job.earlierTrackingIds.join(', '), true);
    field(dl, 'Attempts', String(job.attempts));
    field(dl, 'Next attempt', fmtTime(job.nextAttemptAt));
    field(dl, 'Last error', job.lastError);
    field(dl, 'Queued', fmtTime(job.createdAt));
    field(dl, 'Updated', fmtTime(job.updatedAt));
    field(dl, 'Done', fmtTime(job.doneAt));
  }

  function setUpWriteBacks() {
    $('wb-filters').addEventListener('submit', function (ev) {
      ev.preventDefault();
      wbView.filters = { outcome: $('wb-outcome').value, source: $('wb-source').value.trim() };
      wbView.offset = 0;
      refresh();
    });
    $('wb-filters').addEventListener('reset', function () {
      wbView.filters = {};
      wbView.offset = 0;
      setTimeout(refresh, 0);
    });
    $('wb-prev-page').addEventListener('click', function () {
      wbView.offset = Math.max(0, wbView.offset - WB_PAGE_SIZE);
      refresh();
    });
    $('wb-next-page').addEventListener('click', function () {
      if (wbView.hasMore) { wbView.offset += WB_PAGE_SIZE; refresh(); }
    });
  }
`;
