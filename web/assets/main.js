// @ts-check
// filmgate dashboard, the entry module (native ES modules, no bundler).
//
// Data enters from the same-origin JSON API: `GET /api/refresh/` (first a full page, then deltas
// with the cursor), the `GET /api/events/` server-sent stream in Live mode, and
// `GET /api/queue/?state=dead` at each tick (`live.js`, `dead.js`). Operator actions leave through
// the POST/DELETE endpoints, with a bearer token asked for on a 401 (`api.js`). Server text is
// only ever put in the page through textContent (`dom.js`): every payload is inert.
//
// Modules: format (numbers, times), dom (elements), api (requests, token, session), tables
// (sequences, films), status (queue, links), dead (dead items), chart (throughput), spcchart
// (control charts as SVG), quality (the SPC panel), live (the refresh loop, events, mode), main
// (wiring). `lot.js` is the lot report's page (`/lots/{id}`).

import { answerToken, whenSessionOpens } from './api.js';
import { drawChart, setRefreshEvery } from './chart.js';
import { onDeadAction, retryAll } from './dead.js';
import { $ } from './dom.js';
import {
  LS_MODE, MODES, refreshEveryMs, sessionOpened, setMode, tick, tickClock,
} from './live.js';
import { onLinkAction } from './status.js';

// ---------- start ----------

function start() {
  whenSessionOpens(sessionOpened);
  onDeadAction(tick);
  onLinkAction(tick);
  setRefreshEvery(refreshEveryMs);
  let saved = 'live';
  try { saved = localStorage.getItem(LS_MODE) || 'live'; } catch (_) { /* default */ }
  // A kiosk bookmark may carry the mode: /?refresh=live|1000|2000|5000|10000|off
  const asked = new URLSearchParams(location.search).get('refresh');
  if (asked && MODES.includes(asked)) saved = asked;
  $('refresh-mode').addEventListener('change', (e) =>
    setMode(/** @type {HTMLSelectElement} */ (e.target).value));
  $('refresh-now').addEventListener('click', () => tick());
  $('retry-all').addEventListener('click', retryAll);
  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const t = /** @type {HTMLInputElement} */ ($('token-input')).value.trim();
    if (t) answerToken(t);
  });
  $('token-cancel').addEventListener('click', () => answerToken(null));
  window.addEventListener('resize', drawChart);
  if (window.matchMedia) {
    const mq = window.matchMedia('(prefers-color-scheme: dark)');
    if (mq.addEventListener) mq.addEventListener('change', drawChart);
  }
  setInterval(() => { tickClock(); drawChart(); }, 1000);
  drawChart();
  setMode(saved);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
