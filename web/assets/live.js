// @ts-check
// Keeping the page current: the refresh loop (`GET /api/refresh/` with a cursor, then the dead
// items), the server-sent events of Live mode, the chosen refresh mode, and the connection
// status. Owns the loop's state.

import { api } from './api.js';
import { drawChart } from './chart.js';
import { lastDeadCount, refreshDead } from './dead.js';
import { $, el, setText } from './dom.js';
import { fmtAge, pad } from './format.js';
import { renderLinks, renderQueue, tickAges } from './status.js';
import { refreshQuality } from './quality.js';
import { applyRows } from './tables.js';

const LIVE_HEARTBEAT_MS = 5000;      // Live mode: poll this often anyway (dead list, liveness)
export const LIVE_FALLBACK_MS = 2000; // Live mode without a working stream
const SSE_RETRY_MS = 15000;          // Live mode: reopen a stream the browser gave up on
const MAX_CATCHUP_PAGES = 4;         // beyond this, jump to the newest page instead
export const LS_MODE = 'filmgate.refresh';
export const MODES = ['live', '1000', '2000', '5000', '10000', 'off'];

const st = {
  mode: 'live',
  /** @type {string|null} */
  cursor: null,
  loaded: false,          // the first full page has been applied
  busy: false,
  again: false,           // a tick was asked for while one was running
  timer: 0,
  failures: 0,
  failingSince: 0,
  lastOkAt: 0,
  /** @type {EventSource|null} */
  es: null,
  esOpen: false,
  esFailed: false,        // the browser gave up on the stream; polling until it reopens
  esRetryTimer: 0,
  lastEventAt: 0,
};

/** How often answers come now (ms): the chart tells gaps by it. */
export function refreshEveryMs() {
  return Number(st.mode) || (st.esOpen ? 1000 : LIVE_FALLBACK_MS);
}

/** A read session was opened: start the stream if Live mode waits for one. */
export function sessionOpened() {
  if (st.mode === 'live' && !st.esOpen) openStream();
}

// ---------- cursor ----------

function parseCursor(c) {
  const m = /^s(\d+)\.f(\d+)$/.exec(String(c || ''));
  return m ? [Number(m[1]), Number(m[2])] : null;
}

// The newer of two cursors (component-wise); an unknown format: the one received last.
function newerCursor(ours, theirs) {
  if (!theirs) return ours;
  const a = parseCursor(ours);
  const b = parseCursor(theirs);
  if (!a || !b) return theirs;
  return `s${Math.max(a[0], b[0])}.f${Math.max(a[1], b[1])}`;
}

// ---------- applying a refresh ----------

function apply(data, fromStream) {
  if (!data || typeof data !== 'object') return;
  if (data.cursor) st.cursor = newerCursor(st.cursor, data.cursor);
  applyRows(data, st.loaded);
  if (data.queue) renderQueue(data.queue);
  if (Array.isArray(data.links)) renderLinks(data.links);
  markOk();
  if (fromStream && data.queue && data.queue.dead !== lastDeadCount()) refreshDead().catch(() => {});
}

// ---------- connection status ----------

function setConn(state, text) {
  const pill = $('conn-status');
  pill.dataset.state = state;
  setText($('conn-text'), text);
}

function modeLabel() {
  if (st.mode === 'off') return ['paused', 'Auto-refresh off'];
  if (st.mode === 'live') {
    if (st.esOpen) return ['live', 'Live'];
    if (st.esFailed) return ['polling', `Polling every ${LIVE_FALLBACK_MS / 1000} s (no live stream)`];
    return ['polling', 'Live (stream connecting)'];
  }
  return ['polling', `Polling every ${Number(st.mode) / 1000} s`];
}

function markOk() {
  st.lastOkAt = Date.now();
  st.failures = 0;
  st.failingSince = 0;
  $('api-error').hidden = true;
  const [s, t] = modeLabel();
  setConn(s, t);
  tickClock();
}

// The time of the last answer, and how stale it is.
export function tickClock() {
  tickAges();
  if (!st.lastOkAt) return;
  const stale = Date.now() - st.lastOkAt;
  const t = /** @type {HTMLTimeElement} */ ($('last-update'));
  const d = new Date(st.lastOkAt);
  setText(t, `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` +
    (stale >= 10000 ? ` (${fmtAge(stale)} ago)` : ''));
  t.dateTime = d.toISOString();
}

function markFailed(err) {
  st.failures += 1;
  if (!st.failingSince) st.failingSince = Date.now();
  const banner = $('api-error');
  banner.textContent = '';
  banner.appendChild(el('strong', null, 'No answer from the filmgate API:'));
  const since = new Date(st.failingSince);
  banner.appendChild(el('span', null,
    `${err && err.message ? err.message : 'Request failed'} (since ${pad(since.getHours())}:${pad(since.getMinutes())}:${pad(since.getSeconds())}). ` +
    'Retrying; the figures below are the last ones received.'));
  banner.hidden = false;
  setConn('offline', 'Offline, retrying');
}

// ---------- refresh loop ----------

async function pull() {
  if (!st.loaded || !st.cursor) {
    const data = await api('GET', '/api/refresh/');
    apply(data, false);
    st.loaded = true;
  } else {
    for (let page = 0; ; page++) {
      const data = await api('GET', `/api/refresh/?cursor=${encodeURIComponent(st.cursor)}`);
      apply(data, false);
      // The server says when its catch-up page was cut.
      if (!data.more) break;
      if (page + 1 >= MAX_CATCHUP_PAGES) {
        // Far behind (a flood): only the newest rows are shown, so jump to them.
        apply(await api('GET', '/api/refresh/'), false);
        break;
      }
    }
  }
  await refreshDead();
  refreshQuality();
}

function nextDelay() {
  if (st.failures > 0) {
    const backoff = Math.min(10000, 1000 * 2 ** Math.min(st.failures - 1, 4));
    const every = Number(st.mode) || 0;
    return Math.max(backoff, every);
  }
  if (st.mode === 'off') return 0;
  if (st.mode === 'live') return st.esOpen ? LIVE_HEARTBEAT_MS : LIVE_FALLBACK_MS;
  return Number(st.mode);
}

export async function tick() {
  clearTimeout(st.timer);
  if (st.busy) { st.again = true; return; }
  st.busy = true;
  $('refresh-now').disabled = true;
  try {
    await pull();
    markOk();
  } catch (e) {
    markFailed(e);
  } finally {
    st.busy = false;
    $('refresh-now').disabled = false;
  }
  if (st.again) {
    st.again = false;
    st.timer = setTimeout(tick, 0);
    return;
  }
  const d = nextDelay();
  if (d > 0) st.timer = setTimeout(tick, d);
}

// ---------- server-sent events ----------

export function openStream() {
  closeStream();
  if (st.mode !== 'live' || typeof EventSource === 'undefined') return;
  const es = new EventSource('/api/events/');
  st.es = es;
  es.addEventListener('open', () => {
    st.esOpen = true;
    st.esFailed = false;
    // Catch up on what happened between the last poll and the stream's start.
    tick();
  });
  es.addEventListener('refresh', (ev) => {
    st.lastEventAt = Date.now();
    let data;
    try { data = JSON.parse(ev.data); } catch (_) { return; }
    apply(data, true);
    refreshQuality();
  });
  // An SPC alarm: the quality panel shows it (within its once-a-second refresh).
  es.addEventListener('alarm', () => refreshQuality());
  es.addEventListener('error', () => {
    const wasOpen = st.esOpen;
    st.esOpen = false;
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up (not an event stream, or refused): poll, and try again later.
      closeStream();
      st.esFailed = true;
      st.esRetryTimer = setTimeout(openStream, SSE_RETRY_MS);
    }
    if (wasOpen) tick();
  });
}

function closeStream() {
  clearTimeout(st.esRetryTimer);
  if (st.es) st.es.close();
  st.es = null;
  st.esOpen = false;
}

export function setMode(mode) {
  st.mode = MODES.includes(mode) ? mode : 'live';
  $('refresh-mode').value = st.mode;
  try { localStorage.setItem(LS_MODE, st.mode); } catch (_) { /* not remembered */ }
  st.esFailed = false;
  if (st.mode === 'live') openStream(); else closeStream();
  tick();
}
