// @ts-check
// The newest sequences and films tables: rows merged by id, newest on top, at most MAX_ROWS.

import { el, outside } from './dom.js';
import { fmtTime, fmtValue } from './format.js';

const MAX_ROWS = 25;

// Inserts rows not shown yet, ordered by id, newest on top, keeping MAX_ROWS.
function mergeRows(tbody, rows, build, flash) {
  const have = new Set();
  for (const tr of tbody.children) have.add(tr.dataset.id);
  const fresh = rows
    .filter((r) => r && r.id !== undefined && !have.has(String(r.id)))
    .sort((a, b) => Number(b.id) - Number(a.id));
  if (!fresh.length) return;
  for (const row of fresh.slice(0, MAX_ROWS)) {
    const tr = build(row);
    if (flash) tr.classList.add('new');
    let before = null;
    for (const other of tbody.children) {
      if (Number(other.dataset.id) < Number(row.id)) { before = other; break; }
    }
    tbody.insertBefore(tr, before);
  }
  while (tbody.children.length > MAX_ROWS) tbody.lastElementChild.remove();
}

function buildSequenceRow(s) {
  const tr = el('tr');
  tr.dataset.id = String(s.id);
  tr.dataset.uid = String(s.uid || '');
  tr.appendChild(el('td', 'id', s.id));
  const key = outside('td', 'key', s.key === null || s.key === undefined || s.key === '' ? '—' : s.key);
  tr.appendChild(key);
  tr.appendChild(outside('td', 'src', s.source));
  const created = el('td', 'time', fmtTime(s.created, false));
  created.title = String(s.created || '');
  tr.appendChild(created);
  tr.title = `uid ${s.uid || ''}`;
  return tr;
}

function buildFilmRow(f) {
  const tr = el('tr');
  tr.dataset.id = String(f.id);
  tr.dataset.uid = String(f.uid || '');
  tr.dataset.sequence = String(f.sequence ?? '');
  tr.appendChild(el('td', 'id', f.id));
  const rec = el('td', 'time', fmtTime(f.received_at, true));
  rec.title = String(f.received_at || '');
  tr.appendChild(rec);
  tr.appendChild(outside('td', 'src', f.source));
  tr.appendChild(el('td', 'num', f.sequence ?? '–'));
  const cell = el('td', 'rec');
  const data = f.data && typeof f.data === 'object' ? f.data : {};
  const keys = Object.keys(data);
  if (keys.length) {
    const kv = el('div', 'kv');
    kv.dataset.field = 'data';
    for (const k of keys) {
      const item = el('span');
      item.dataset.key = k;
      item.appendChild(el('span', 'k', k));
      item.appendChild(el('span', 'v', fmtValue(data[k])));
      item.title = item.textContent;
      kv.appendChild(item);
    }
    cell.appendChild(kv);
  }
  const raw = outside('div', 'raw', f.raw ?? '');
  raw.dataset.field = 'raw';
  cell.appendChild(raw);
  tr.appendChild(cell);
  tr.title = `uid ${f.uid || ''}`;
  return tr;
}

/**
 * Adds the rows of a refresh answer to both tables.
 * @param {{sequences?: object[], films?: object[]}} data
 * @param {boolean} flash mark the new rows (not on the first page)
 */
export function applyRows(data, flash) {
  const sequences = /** @type {HTMLElement} */ (document.getElementById('sequences'));
  const films = /** @type {HTMLElement} */ (document.getElementById('films'));
  if (Array.isArray(data.sequences)) mergeRows(sequences, data.sequences, buildSequenceRow, flash);
  if (Array.isArray(data.films)) mergeRows(films, data.films, buildFilmRow, flash);
  /** @type {HTMLElement} */ (document.getElementById('sequences-empty')).hidden = sequences.children.length > 0;
  /** @type {HTMLElement} */ (document.getElementById('films-empty')).hidden = films.children.length > 0;
}
