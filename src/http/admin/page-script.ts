// The admin page's script, plain browser JavaScript kept as a string (no build step, no framework).
// Every value from the API goes into the DOM through textContent or attributes, never innerHTML.
// The browser re-sends the Basic credentials it prompted for on these same-origin fetch() calls.
// (No backticks or dollar-brace sequences below: this text sits inside a TypeScript template. The one
// interpolation splices in the write-back part, kept in its own file.)
import { WRITE_BACK_SCRIPT } from './page-write-backs.js';

export const PAGE_SCRIPT = `
'use strict';
(function () {
  var API = document.body.getAttribute('data-api');
  var REFRESH_MS = 5000;
  var PAGE_SIZE = 50;
  var DEAD_LIMIT = 200;
  var MAX_REASON = 200;
  var view = { offset: 0, hasMore: false, selected: null, busy: false, filters: {} };
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }
  function cell(row, text, className) { var td = el('td', text, className); row.appendChild(td); return td; }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function pad(n) { return n < 10 ? '0' + n : String(n); }
  function fmtTime(ms) {
    if (ms === undefined || ms === null) return '';
    var d = new Date(ms);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
      pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }
  function short(text, max) {
    if (!text) return '';
    return text.length > max ? text.slice(0, max - 1) + '…' : text;
  }
  function errorText(error) {
    if (!error) return '';
    var head = error.classification + ' / ' + error.kind + (error.status ? ' (HTTP ' + error.status + ')' : '');
    return head + ': ' + error.message;
  }
  // '7 (2 counted)': five of them never reached OpenCRVS and do not count toward delivery.maxAttempts.
  function attemptsText(e) {
    var counted = e.countedAttempts === undefined ? e.attempts : e.countedAttempts;
    return counted === e.attempts ? String(e.attempts) : e.attempts + ' (' + counted + ' counted)';
  }
  function badge(state) { return el('span', state, 'badge state-' + state); }

  function showMessage(text, isError) {
    var box = $('message');
    box.textContent = text;
    box.className = isError ? 'banner error' : 'banner';
    box.hidden = !text;
  }

  async function call(method, path, body) {
    var headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    var response = await fetch(API + path, {
      method: method,
      credentials: 'same-origin',
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    var body = {};
    try { body = await response.json(); } catch (e) { body = {}; }
    if (!response.ok) throw new Error(body.error || ('HTTP ' + response.status));
    return body;
  }

  function emptyRow(tbody, columns, text) {
    var tr = el('tr');
    var td = cell(tr, text, 'muted');
    td.colSpan = columns;
    tbody.appendChild(tr);
  }

  function idButton(id) {
    var button = el('button', '#' + id, 'link');
    button.type = 'button';
    button.setAttribute('aria-label', 'Show details of event ' + id);
    button.addEventListener('click', function () { openDetail(id); });
    return button;
  }

  // label: 'Retry now' for a failed event waiting out its backoff (the same API call makes it due now).
  function replayButton(id, label) {
    var button = el('button', label || 'Replay', 'replay');
    button.type = 'button';
    button.setAttribute('aria-label', (label || 'Replay') + ' event ' + id);
    button.addEventListener('click', function () { replayOne(id, button); });
    return button;
  }

  function dismissButton(id) {
    var button = el('button', 'Dismiss', 'dismiss');
    button.type = 'button';
    button.setAttribute('aria-label', 'Dismiss event ' + id);
    button.addEventListener('click', function () { dismissOne(id, button); });
    return button;
  }

  function undoDismissButton(id) {
    var button = el('button', 'Undo dismissal', 'replay');
    button.type = 'button';
    button.setAttribute('aria-label', 'Undo the dismissal of event ' + id);
    button.addEventListener('click', function () { undoDismissal(id, button); });
    return button;
  }

  function renderHold(hold) {
    var banner = $('hold-banner');
    if (!hold || !hold.held) { banner.hidden = true; banner.textContent = ''; return; }
    var kind = hold.kind ? ' [' + hold.kind + (hold.status ? ', HTTP ' + hold.status : '') + ']' : '';
    var row = hold.rowId != null ? ' (shown by event #' + hold.rowId + ')' : '';
    banner.textContent = 'Delivery is held since ' + fmtTime(hold.since) + ': ' + hold.reason + kind + row +
      '. Events wait in the queue with no attempt counted; fix the problem and delivery resumes at the next probe.';
    banner.hidden = false;
  }

  function renderCounts(summary) {
    var table = $('counts');
    var states = Object.keys(summary.byState);
    var headRow = table.tHead.rows[0];
    while (headRow.cells.length > 1) headRow.deleteCell(1);
    states.concat(['total']).forEach(function (state) {
      var th = el('th', state); th.scope = 'col'; headRow.appendChild(th);
    });
    var tbody = table.tBodies[0];
    clear(tbody);
    var types = Object.keys(summary.byEventType).sort();
    if (types.length === 0) { emptyRow(tbody, states.length + 2, 'No events recorded yet.'); return; }
    types.concat(['all']).forEach(function (type) {
      var tr = el('tr');
      var th = el('th', type); th.scope = 'row'; tr.appendChild(th);
      var total = 0;
      states.forEach(function (state) {
        var n = 0;
        summary.counts.forEach(function (c) {
          if (c.state === state && (type === 'all' || c.eventType === type)) n += c.count;
        });
        total += n;
        cell(tr, n, 'num');
      });
      cell(tr, total, 'num');
      tbody.appendChild(tr);
    });
    $('summary-line').textContent = summary.outstanding + ' outstanding (pending, failed or delivering)' +
      (summary.nextDueAt ? '; next due ' + fmtTime(summary.nextDueAt) : '') +
      (summary.showPersonalData ? '. Personal data is SHOWN (admin.showPersonalData).' : '. Personal data is hidden.');
  }

  function renderSources(sources) {
    var tbody = $('sources').tBodies[0];
    clear(tbody);
    if (sources.length === 0) { emptyRow(tbody, 7, 'No sources configured.'); return; }
    sources.forEach(function (s) {
      var tr = el('tr');
      var th = el('th', s.id); th.scope = 'row'; tr.appendChild(th);
      cell(tr, s.kind);
      var marks = el('ul', null, 'plain mono');
      Object.keys(s.watermarks).forEach(function (type) {
        marks.appendChild(el('li', type + ': ' + (s.watermarks[type] || 'none yet')));
      });
      // Said where the watermarks are: they were moved back, and records read again.
      var behind = s.clockBehind;
      if (behind) marks.appendChild(el('li', 'moved back ' + fmtTime(behind.at) + ': ' + behind.resourceType +
        ' was at ' + behind.watermark + ', ahead of the source clock at ' + behind.serverTime +
        ' (its clock is behind); read again from ' + behind.movedTo, 'err'));
      tr.appendChild(el('td')).appendChild(marks);
      cell(tr, s.lastPollStartedAt ? fmtTime(s.lastPollStartedAt) +
        (s.lastPollFinishedAt && s.lastPollFinishedAt >= s.lastPollStartedAt ? ' (finished)' : ' (running)') : 'never');
      cell(tr, s.consecutiveFailures, 'num');
      cell(tr, s.lastError || '', 'err');
      var sub = s.subscription;
      cell(tr, sub ? 'last notification ' + (fmtTime(sub.lastNotificationAt) || 'never') +
        (sub.lastEventNumber !== undefined ? ' (#' + sub.lastEventNumber + ')' : '') + '; gaps ' + sub.gaps +
        (sub.lastGapAt ? ' (last ' + fmtTime(sub.lastGapAt) + ': ' + (sub.lastGapReason || '') + ')' : '') +
        '; catch-ups ' + sub.catchUps : 'polling only');
      tbody.appendChild(tr);
    });
  }

  function renderDead(page) {
    var events = page.events;
    var tbody = $('dead').tBodies[0];
    clear(tbody);
    // More than fit here: say so, or the operator takes the table for all of them.
    $('dead-more').hidden = !page.hasMore;
    $('replay-all').disabled = events.length === 0;
    if (events.length === 0) { emptyRow(tbody, 8, 'No dead letters.'); return; }
    events.forEach(function (e) {
      var tr = el('tr');
      tr.setAttribute('data-id', e.id);
      cell(tr).appendChild(idButton(e.id));
      cell(tr, e.sourceId);
      cell(tr, e.eventType);
      cell(tr, e.sourceRef, 'mono');
      cell(tr, short(errorText(e.lastError) || e.skipReason, 200), 'err');
      cell(tr, attemptsText(e), 'num');
      cell(tr, fmtTime(e.updatedAt), 'time');
      var actions = cell(tr, null, 'actions');
      actions.appendChild(replayButton(e.id));
      actions.appendChild(dismissButton(e.id));
      tbody.appendChild(tr);
    });
  }

  function renderEvents(page) {
    var tbody = $('events').tBodies[0];
    clear(tbody);
    view.hasMore = page.hasMore;
    // A record the mappings did not take, or last changed before go-live, leaves no row: the dry run says which.
    if (page.events.length === 0)
      emptyRow(tbody, 9, view.filters.find && view.filters.find.charAt(0) !== '#' ?
        'No events match. A record at the source that is no event for the mappings (no birth or death evidence, ' +
        "a stillbirth, a merged duplicate) leaves no row, nor does one last changed before the source's go-live " +
        '(sources[].poll.since or sinceDays), which is not read: opencrvs-bridge map --ref ' +
        (view.filters.find.indexOf('/') >= 0 ? view.filters.find.replace(/^[A-Za-z0-9_.-]+:(?=[A-Z])/, '') : 'Patient/<its id>') +
        ' reads it from the source and says why it was not taken.' : 'No events match.');
    page.events.forEach(function (e) {
      var tr = el('tr');
      tr.setAttribute('data-id', e.id);
      cell(tr).appendChild(idButton(e.id));
      cell(tr, e.sourceId);
      cell(tr, e.eventType);
      cell(tr, e.sourceRef, 'mono');
      cell(tr).appendChild(badge(e.state));
      cell(tr, attemptsText(e), 'num');
      cell(tr, e.trackingId || '', 'mono');
      // A dismissed row: the operator's reason, not the error it died with (that is in its detail).
      cell(tr, short(e.dismissed ? e.skipReason : errorText(e.lastError) || e.skipReason, 140), 'err');
      cell(tr, fmtTime(e.updatedAt), 'time');
      tbody.appendChild(tr);
    });
    var first = page.events.length ? view.offset + 1 : 0;
    $('page-info').textContent = 'Showing ' + first + '–' + (view.offset + page.events.length);
    $('prev-page').disabled = view.offset === 0;
    $('next-page').disabled = !page.hasMore;
  }

  function field(dl, label, value, mono) {
    if (value === undefined || value === null || value === '') return;
    dl.appendChild(el('dt', label));
    dl.appendChild(el('dd', value, mono ? 'mono' : ''));
  }

  function renderDetail(d) {
    $('detail-h').textContent = 'Event #' + d.id;
    var actions = $('detail-actions');
    clear(actions);
    actions.appendChild(badge(d.state));
    if (d.state === 'dead') {
      actions.appendChild(document.createTextNode(' '));
      actions.appendChild(replayButton(d.id));
      actions.appendChild(document.createTextNode(' '));
      actions.appendChild(dismissButton(d.id));
    }
    if (d.state === 'failed') { actions.appendChild(document.createTextNode(' ')); actions.appendChild(replayButton(d.id, 'Retry now')); }
    if (d.dismissed) { actions.appendChild(document.createTextNode(' ')); actions.appendChild(undoDismissButton(d.id)); }
    var dl = $('detail-fields');
    clear(dl);
    field(dl, 'Source', d.sourceId);
    field(dl, 'Event type', d.eventType);
    field(dl, 'Source reference', d.sourceRef, true);
    field(dl, 'Subject', d.subjectKey, true);
    field(dl, 'Source version', d.sourceVersion);
    field(dl, 'Mapping', d.mappingId);
    field(dl, 'OpenCRVS event ID', d.eventId, true);
    field(dl, 'Tracking ID', d.trackingId, true);
    field(dl, 'Office', d.office, true);
    field(dl, 'Facility', d.facility, true);
    field(dl, 'Create transaction ID', d.transactionIds.create, true);
    field(dl, 'Notify transaction ID', d.transactionIds.notify, true);
    field(dl, 'Single-call transaction ID', d.transactionIds.base, true);
    field(dl, 'Attempts (this budget)', String(d.attempts));
    if (d.countedAttempts !== undefined && d.countedAttempts !== d.attempts)
      field(dl, 'Counted toward delivery.maxAttempts', d.countedAttempts + ' (the others never reached OpenCRVS: ' +
        'a timeout, a refused connection, a gateway 502-504; they end the row by delivery.maxAgeHours only)');
    field(dl, 'Next run', ['pending', 'failed'].indexOf(d.state) >= 0 ? fmtTime(d.nextRunAt) : '');
    field(dl, 'Locked by', d.lockedBy ? d.lockedBy + ' since ' + fmtTime(d.lockedAt) : '');
    field(dl, 'First seen', fmtTime(d.firstSeenAt));
    field(dl, 'Queued', fmtTime(d.queuedAt));
    field(dl, 'Rechecked at the source', fmtTime(d.recheckedAt));
    field(dl, 'Updated', fmtTime(d.updatedAt));
    field(dl, 'Delivered', fmtTime(d.deliveredAt));
    field(dl, 'Updated after notification', d.updatedAfterNotification.count > 0 ?
      d.updatedAfterNotification.count + ' newer source version(s), last ' +
      fmtTime(d.updatedAfterNotification.lastAt) + ' (not sent again: correct it in OpenCRVS)' : '');
    field(dl, 'Skip reason', d.skipReason);
    field(dl, 'Withdrawn in the source', d.withdrawnReason ? d.withdrawnReason +
      (d.state === 'delivered' || d.state === 'delivered-pending' ? ' (after notification: correct it in OpenCRVS)' :
        ' (settled before anything more is sent)') : '');
    field(dl, 'Mapping warnings', (d.mappingWarnings || []).join('; '));
    field(dl, 'Also read by', d.readBySource ? 'source ' + d.readBySource +
      ' (same DHIS2 programme: the record moved into its org units; its versions are recorded on this row, never sent as a second event)' : '');
    field(dl, 'Last error', errorText(d.lastError));
    var tbody = $('attempts').tBodies[0];
    clear(tbody);
    if (d.attemptHistory.length === 0) emptyRow(tbody, 5, 'No attempts yet.');
    d.attemptHistory.forEach(function (a) {
      var tr = el('tr', null, 'attempt');
      // As the row's "7 (2 counted)": the attempts that never reached OpenCRVS say they were not counted.
      cell(tr, a.unreached ? a.attempt + ' (not counted)' : a.attempt, 'num');
      cell(tr, a.step);
      cell(tr).appendChild(el('span', a.outcome, 'badge outcome-' + a.outcome));
      cell(tr, fmtTime(a.startedAt));
      cell(tr, fmtTime(a.nextRunAt));
      tbody.appendChild(tr);
      if (a.error) {
        // The error gets a full-width row of its own: OpenCRVS messages are long and the panel is narrow.
        var errorRow = el('tr', null, 'attempt-error');
        var td = cell(errorRow, errorText(a.error), 'err');
        td.colSpan = 5;
        tbody.appendChild(errorRow);
      }
    });
    renderDetailWriteBack(d.writeBack);
    var pre = $('declaration');
    if (d.declaration) {
      pre.textContent = JSON.stringify({ declaration: d.declaration, annotation: d.annotation }, null, 2);
      pre.hidden = false;
      $('declaration-note').textContent = 'Shown because admin.showPersonalData is on.';
    } else {
      pre.hidden = true;
      pre.textContent = '';
      $('declaration-note').textContent = !d.payloadStored ? 'No payload stored (purged after delivery, or never mapped).' :
        'Hidden: personal data is not shown unless admin.showPersonalData is on.';
    }
    $('detail').hidden = false;
    document.querySelector('main').classList.add('with-detail');
  }

${WRITE_BACK_SCRIPT}
  function query() {
    var params = new URLSearchParams();
    Object.keys(view.filters).forEach(function (k) { if (view.filters[k]) params.set(k, view.filters[k]); });
    params.set('limit', String(PAGE_SIZE));
    params.set('offset', String(view.offset));
    return params.toString();
  }

  function fillOptions(summary) {
    var select = $('f-state');
    if (select.options.length === 1) {
      Object.keys(summary.byState).forEach(function (s) { var o = el('option', s); o.value = s; select.appendChild(o); });
    }
    var types = $('event-types');
    clear(types);
    Object.keys(summary.byEventType).forEach(function (t) { var o = el('option'); o.value = t; types.appendChild(o); });
    var sources = $('source-ids');
    clear(sources);
    summary.sources.forEach(function (s) { var o = el('option'); o.value = s.id; sources.appendChild(o); });
  }

  async function refresh() {
    if (view.busy) return;
    view.busy = true;
    try {
      var results = await Promise.all([
        call('GET', '/summary'),
        call('GET', '/events?state=dead&limit=' + DEAD_LIMIT),
        call('GET', '/events?' + query()),
        view.selected === null ? Promise.resolve(null) : call('GET', '/events/' + view.selected),
        call('GET', '/write-backs?' + wbQuery()),
      ]);
      renderHold(results[0].hold);
      renderCounts(results[0]);
      fillOptions(results[0]);
      renderSources(results[0].sources);
      renderDead(results[1]);
      renderEvents(results[2]);
      renderWriteBackCounts(results[0].writeBacks);
      renderWriteBacks(results[4]);
      if (results[3]) renderDetail(results[3]);
      $('refresh-status').textContent = 'Updated ' + fmtTime(Date.now());
    } catch (err) {
      $('refresh-status').textContent = 'Refresh failed: ' + err.message;
    } finally {
      view.busy = false;
    }
  }

  async function openDetail(id) {
    view.selected = id;
    try {
      renderDetail(await call('GET', '/events/' + id));
      $('detail-close').focus();
    } catch (err) {
      showMessage('Could not load event ' + id + ': ' + err.message, true);
    }
  }

  async function replayOne(id, button) {
    button.disabled = true;
    try {
      var result = await call('POST', '/events/' + id + '/replay');
      var note = (result.notes || []).map(function (n) { return n.note; }).join('; ');
      showMessage('Event ' + id + ' is back in the queue' + (note ? ': ' + note : '') + '.', false);
    } catch (err) {
      showMessage('Replay of event ' + id + ' failed: ' + err.message, true);
    }
    await refresh();
  }

  // The reason is asked for, then the dismissal confirmed: a misclicked Dismiss costs nothing.
  async function dismissOne(id, button) {
    var typed = window.prompt('Dismiss event ' + id + ': it is never sent, and sync stops counting it. ' +
      'Why must it never go (a duplicate, a test record)? One line, at most ' + MAX_REASON + ' characters; ' +
      'do not name the patient.');
    if (typed === null) return;
    var reason = typed.trim();
    if (!reason || reason.length > MAX_REASON) {
      showMessage('Event ' + id + ' was not dismissed: the reason must be 1 to ' + MAX_REASON + ' characters.', true);
      return;
    }
    if (!window.confirm('Dismiss event ' + id + ' with the reason "' + reason + '"? Nothing is sent to or ' +
      'withdrawn from OpenCRVS. Undo dismissal (in its detail) makes it dead again.')) return;
    button.disabled = true;
    try {
      var answer = await call('POST', '/events/' + id + '/dismiss', { reason: reason });
      showMessage('Event ' + id + ' is dismissed: it will not be sent.' + (answer.note ? ' Note: ' + answer.note : ''), false);
    } catch (err) {
      showMessage('Dismissal of event ' + id + ' failed: ' + err.message, true);
    }
    await refresh();
  }

  async function undoDismissal(id, button) {
    button.disabled = true;
    try {
      await call('POST', '/events/' + id + '/undismiss');
      showMessage('Event ' + id + ' is dead again, with the error it died with: replay it to send it.', false);
    } catch (err) {
      showMessage('Undoing the dismissal of event ' + id + ' failed: ' + err.message, true);
    }
    await refresh();
  }

  function localDay(value, endOfDay) {
    if (!value) return '';
    var parts = value.split('-').map(Number);
    var d = endOfDay ? new Date(parts[0], parts[1] - 1, parts[2], 23, 59, 59, 999) : new Date(parts[0], parts[1] - 1, parts[2]);
    return String(d.getTime());
  }

  $('filters').addEventListener('submit', function (ev) {
    ev.preventDefault();
    view.filters = {
      find: $('f-find').value.trim(),
      state: $('f-state').value,
      eventType: $('f-type').value.trim(),
      source: $('f-source').value.trim(),
      since: localDay($('f-since').value, false),
      until: localDay($('f-until').value, true),
      updatedAfterNotification: $('f-updated').checked ? 'true' : '',
    };
    view.offset = 0;
    refresh();
  });
  $('filters').addEventListener('reset', function () {
    view.filters = {};
    view.offset = 0;
    setTimeout(refresh, 0);
  });
  $('prev-page').addEventListener('click', function () { view.offset = Math.max(0, view.offset - PAGE_SIZE); refresh(); });
  $('next-page').addEventListener('click', function () { if (view.hasMore) { view.offset += PAGE_SIZE; refresh(); } });
  $('detail-close').addEventListener('click', function () {
    view.selected = null;
    $('detail').hidden = true;
    document.querySelector('main').classList.remove('with-detail');
  });
  $('refresh-now').addEventListener('click', refresh);
  $('replay-all').addEventListener('click', async function () {
    var button = $('replay-all');
    if (!window.confirm('Put every dead event back in the queue?')) return;
    button.disabled = true;
    try {
      var result = await call('POST', '/replay-dead');
      showMessage(result.requeued.length + ' event(s) back in the queue' +
        (result.skipped.length ? '; ' + result.skipped.length + ' skipped: ' +
          result.skipped.map(function (s) { return '#' + s.id + ' ' + s.reason; }).join('; ') : '') +
        ((result.notes || []).length ? '; note: ' +
          result.notes.map(function (n) { return '#' + n.id + ' ' + n.note; }).join('; ') : '') + '.',
        result.skipped.length > 0);
    } catch (err) {
      showMessage('Replay of all dead events failed: ' + err.message, true);
    }
    await refresh();
  });
  setUpWriteBacks();
  setInterval(function () { if ($('auto-refresh').checked && !document.hidden) refresh(); }, REFRESH_MS);
  refresh();
})();
`;
