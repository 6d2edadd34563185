// @ts-check
// Dead items: the newest ones with their reason and exact bytes, and the operator's retry,
// delete (confirmed inline) and retry-all.

import { api } from './api.js';
import { $, el, outside, setNum, setText, toast } from './dom.js';
import { fmtInt, fmtTime } from './format.js';

const DEAD_LIMIT = 50;

/** A refresh of the list is running; another was asked for meanwhile. */
let deadBusy = false;
let deadAgain = false;
/** @type {number|null} Dead items the server counted last. */
let deadCount = null;

/** @type {() => void} What to do after an action (refresh now). */
let afterAction = () => {};

/** @param {() => void} callback */
export function onDeadAction(callback) {
  afterAction = callback;
}

/** @returns {number|null} */
export function lastDeadCount() {
  return deadCount;
}

// ---------- dead items ----------

export async function refreshDead() {
  if (deadBusy) { deadAgain = true; return; }
  deadBusy = true;
  try {
    const page = await api('GET', `/api/queue/?state=dead&limit=${DEAD_LIMIT}`);
    renderDead(page);
  } finally {
    deadBusy = false;
    if (deadAgain) { deadAgain = false; refreshDead().catch(() => {}); }
  }
}

function renderDead(page) {
  const items = page && Array.isArray(page.results) ? page.results : [];
  const count = page && typeof page.count === 'number' ? page.count : items.length;
  deadCount = count;
  const tbody = $('dead-items');
  const rows = new Map();
  for (const tr of tbody.children) rows.set(tr.dataset.id, tr);
  const keep = new Set();
  for (const item of items) {
    const id = String(item.id);
    keep.add(id);
    let tr = rows.get(id);
    if (!tr) tr = buildDeadRow(item);
    updateDeadRow(tr, item);
    tbody.appendChild(tr);
  }
  for (const [id, tr] of rows) if (!keep.has(id) && !tr.dataset.busy) tr.remove();
  $('dead-empty').hidden = count > 0;
  $('dead-panel').dataset.count = String(count);
  setNum('dead-count', count, fmtInt(count));
  $('retry-all').disabled = count === 0;
  setText($('dead-note'), count > items.length ? `showing the newest ${items.length} of ${fmtInt(count)}` : '');
}

function buildDeadRow(item) {
  const tr = el('tr');
  tr.dataset.id = String(item.id);
  tr.dataset.uid = String(item.uid || '');
  tr.appendChild(el('td', 'id', `#${item.id}`));
  const t = el('td', 'time');
  t.dataset.field = 'received_at';
  tr.appendChild(t);
  tr.appendChild(outside('td', 'src', item.source));
  const att = el('td', 'num');
  att.dataset.field = 'attempts';
  tr.appendChild(att);
  const reason = el('td', 'reason');
  const why = el('div', 'dead-reason');
  why.dataset.field = 'last_error';
  reason.appendChild(why);
  const raw = el('pre', 'dead-raw');
  raw.dataset.field = 'raw';
  reason.appendChild(raw);
  const hex = el('div', 'dead-hex');
  hex.dataset.field = 'raw_hex';
  reason.appendChild(hex);
  tr.appendChild(reason);

  const actions = el('td', 'actions');
  const retry = el('button', 'btn btn-sm', 'Retry');
  retry.type = 'button';
  retry.dataset.action = 'retry';
  const del = el('button', 'btn btn-sm btn-danger', 'Delete');
  del.type = 'button';
  del.dataset.action = 'delete';
  const cancel = el('button', 'btn btn-sm', 'Cancel');
  cancel.type = 'button';
  cancel.dataset.action = 'cancel-delete';
  cancel.hidden = true;
  actions.append(retry, del, cancel);
  tr.appendChild(actions);

  let confirmTimer = 0;
  const resetConfirm = () => {
    clearTimeout(confirmTimer);
    del.classList.remove('confirming');
    del.textContent = 'Delete';
    cancel.hidden = true;
    retry.hidden = false;
  };
  retry.addEventListener('click', () => retryItem(item.id, tr));
  cancel.addEventListener('click', resetConfirm);
  del.addEventListener('click', () => {
    if (!del.classList.contains('confirming')) {
      // Deleting a record is final: ask once more, inline.
      del.classList.add('confirming');
      del.textContent = 'Confirm delete';
      cancel.hidden = false;
      retry.hidden = true;
      confirmTimer = setTimeout(resetConfirm, 6000);
      return;
    }
    resetConfirm();
    deleteItem(item.id, tr);
  });
  return tr;
}

function updateDeadRow(tr, item) {
  const f = (k) => tr.querySelector(`[data-field="${k}"]`);
  setText(f('received_at'), fmtTime(item.received_at, true));
  f('received_at').title = String(item.received_at || '');
  setText(f('attempts'), fmtInt(item.attempts));
  setText(f('last_error'), item.last_error || 'no reason recorded');
  setText(f('raw'), item.raw ?? '');
  setText(f('raw_hex'), item.raw_hex || '');
  f('raw_hex').hidden = !item.raw_hex;
}

async function retryItem(id, tr) {
  tr.dataset.busy = '1';
  for (const b of tr.querySelectorAll('button')) b.disabled = true;
  try {
    const item = await api('POST', `/api/queue/${encodeURIComponent(id)}/retry`);
    if (item && item.state === 'dead') {
      toast(`Item #${id} is still dead: ${item.last_error || 'no reason given'}`, true);
    } else {
      toast(`Item #${id} is queued for delivery again.`);
      tr.remove();
    }
  } catch (e) {
    toast(`Retry of #${id} failed: ${e.message}`, true);
  } finally {
    delete tr.dataset.busy;
    for (const b of tr.querySelectorAll('button')) b.disabled = false;
    afterAction();
  }
}

async function deleteItem(id, tr) {
  tr.dataset.busy = '1';
  for (const b of tr.querySelectorAll('button')) b.disabled = true;
  try {
    await api('DELETE', `/api/queue/${encodeURIComponent(id)}`);
    tr.remove();
    toast(`Item #${id} deleted.`);
  } catch (e) {
    toast(`Delete of #${id} failed: ${e.message}`, true);
  } finally {
    delete tr.dataset.busy;
    for (const b of tr.querySelectorAll('button')) b.disabled = false;
    afterAction();
  }
}

export async function retryAll() {
  const btn = $('retry-all');
  btn.disabled = true;
  try {
    const r = await api('POST', '/api/queue/retry');
    const retried = r && typeof r.retried === 'number' ? r.retried : 0;
    const still = r && typeof r.still_dead === 'number' ? r.still_dead : 0;
    toast(`${fmtInt(retried)} queued again` + (still ? `, ${fmtInt(still)} still dead.` : '.'), still > 0);
  } catch (e) {
    toast(`Retry all failed: ${e.message}`, true);
  } finally {
    afterAction();
  }
}
