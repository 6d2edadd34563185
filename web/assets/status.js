// @ts-check
// The queue's figures and the serial links' cards, as the latest answer shows them.

import { api } from './api.js';
import { sample } from './chart.js';
import { $, el, setNum, setText, toast } from './dom.js';
import { fmtAge, fmtInt, fmtRate, parseTime } from './format.js';

/** @type {() => void} What to do after an action (refresh now). */
let afterAction = () => {};

/** @param {() => void} callback */
export function onLinkAction(callback) {
  afterAction = callback;
}

// ---------- queue ----------

export function renderQueue(q) {
  setNum('queue-pending', q.pending, fmtInt(q.pending));
  setNum('queue-in-flight', q.in_flight, fmtInt(q.in_flight));
  setNum('queue-dead', q.dead, fmtInt(q.dead));
  setNum('queue-posted', q.posted, fmtInt(q.posted));
  for (const id of ['queue-pending', 'queue-in-flight', 'queue-dead', 'queue-posted']) {
    $(id).classList.toggle('long', $(id).textContent.length > 6);
  }
  $('queue-dead').parentElement.classList.toggle('alert', q.dead > 0);

  const hasPending = q.pending > 0 || q.in_flight > 0;
  const age = hasPending ? q.oldest_pending_age_ms : null;
  const ageNode = $('queue-oldest-age');
  setNum('queue-oldest-age', age ?? '', hasPending ? fmtAge(age) : 'none waiting');
  ageNode.classList.toggle('warn', age > 10000 && age <= 300000);
  ageNode.classList.toggle('bad', age > 300000);

  setNum('queue-refused', q.refused_total, fmtInt(q.refused_total));
  $('queue-refused').classList.toggle('bad', q.refused_total > 0);

  const ok = q.store_ok !== false;
  setNum('queue-store', ok, ok ? 'OK' : 'FAILING');
  $('queue-store').classList.toggle('good', ok);
  $('queue-store').classList.toggle('bad', !ok);
  $('store-warning').hidden = ok;

  setText($('queue-totals'),
    `${fmtInt(q.enqueued_total)} enqueued · ${fmtInt(q.delivered_total)} delivered since start`);

  setNum('rate-read', q.read_rate_per_s, fmtRate(q.read_rate_per_s));
  setNum('rate-post', q.post_rate_per_s, fmtRate(q.post_rate_per_s));
  sample(q.read_rate_per_s, q.post_rate_per_s);

  document.title = q.dead > 0 ? `(${q.dead} dead) filmgate` : 'filmgate';
}

// ---------- links ----------

const STATE_TEXT = { up: 'Up', connecting: 'Connecting', down: 'Down' };

function buildLinkCard(name) {
  const card = el('article', 'link-card');
  card.dataset.link = name;
  const top = el('div', 'link-top');
  top.appendChild(el('span', 'link-name', name));
  const pill = el('span', 'pill');
  pill.dataset.field = 'state';
  pill.appendChild(el('span', 'dot'));
  pill.appendChild(el('span', 'state-text'));
  top.appendChild(pill);
  card.appendChild(top);
  const port = el('div', 'link-port');
  port.dataset.field = 'port';
  card.appendChild(port);
  const stats = el('div', 'link-stats');
  const fields = [['frames_read', 'Frames read'], ['frames_rejected', 'Rejected'],
    ['restarts', 'Restarts'], ['last_frame_age', 'Last frame']];
  for (const [f, label] of fields) {
    stats.appendChild(el('span', 'k', label));
    const v = el('span', 'v', '–');
    v.dataset.field = f;
    stats.appendChild(v);
  }
  card.appendChild(stats);
  const bottom = el('div', 'link-bottom');
  const err = el('div', 'link-error');
  err.dataset.field = 'last_error';
  bottom.appendChild(err);
  const btn = el('button', 'btn btn-sm', 'Restart');
  btn.type = 'button';
  btn.dataset.action = 'restart-link';
  btn.addEventListener('click', () => restartLink(name, btn));
  bottom.appendChild(btn);
  card.appendChild(bottom);
  return card;
}

export function renderLinks(links) {
  const box = $('links');
  const seen = new Set();
  for (const l of links) {
    const name = String(l.name);
    seen.add(name);
    let card = null;
    for (const c of box.querySelectorAll('.link-card')) if (c.dataset.link === name) card = c;
    if (!card) card = buildLinkCard(name);
    box.appendChild(card); // keeps the server's order
    const stateName = STATE_TEXT[l.state] ? l.state : 'down';
    card.dataset.state = stateName;
    const pill = card.querySelector('[data-field="state"]');
    pill.dataset.state = stateName;
    setText(pill.querySelector('.state-text'), STATE_TEXT[l.state] || String(l.state));
    const f = (k) => card.querySelector(`[data-field="${k}"]`);
    setText(f('port'), l.port || '');
    f('port').title = String(l.port || '');
    setText(f('frames_read'), fmtInt(l.frames_read));
    setText(f('frames_rejected'), fmtInt(l.frames_rejected));
    f('frames_rejected').classList.toggle('bad', l.frames_rejected > 0);
    setText(f('restarts'), fmtInt(l.restarts));
    f('last_frame_age').dataset.at = l.last_frame_at || '';
    setText(f('last_error'), l.last_error ? `Last error: ${l.last_error}` : '');
    f('last_error').title = l.last_error ? String(l.last_error) : '';
  }
  for (const c of [...box.querySelectorAll('.link-card')]) if (!seen.has(c.dataset.link)) c.remove();
  $('links-empty').hidden = links.length > 0;
  const up = links.filter((l) => l.state === 'up').length;
  setText($('links-summary'), links.length ? `${up} of ${links.length} up` : '');
  tickAges();
}

// Ages move every second without waiting for the server.
export function tickAges() {
  const now = Date.now();
  for (const v of document.querySelectorAll('#links [data-field="last_frame_age"]')) {
    const node = /** @type {HTMLElement} */ (v);
    const d = parseTime(node.dataset.at);
    setText(node, d ? `${fmtAge(Math.max(0, now - d.getTime()))} ago` : 'never');
    node.title = node.dataset.at || '';
  }
}

async function restartLink(name, btn) {
  btn.disabled = true;
  try {
    await api('POST', `/api/links/${encodeURIComponent(name)}/restart`);
    toast(`Restart requested for ${name}.`);
    setTimeout(() => afterAction(), 600);
  } catch (e) {
    toast(`Restart of ${name} failed: ${e.message}`, true);
  } finally {
    setTimeout(() => { btn.disabled = false; }, 1500);
  }
}
