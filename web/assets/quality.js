// @ts-check
// The quality panel: one card per watched (link, field) with the X̄ (or I) and R (or MR)
// charts of a lot (the newest, following the line, or one picked), its capability, and the
// unacknowledged alarms with an Ack button. Fed by `/api/spc/`, `/api/spc/{link}/{field}/points/`
// (the lot's newest 200) and `/api/spc/{link}/{field}/lots/`, and `/api/alarms/` (per chart);
// refreshed at each tick
// and on stream events, `alarm` events included, at most once a second.

import { api } from './api.js';
import { $, el, setText, toast } from './dom.js';
import { fmtTime } from './format.js';
import {
  RULE_LABELS, RULE_MEANINGS, captions, drawSpcPair, fmtNum, seg, svgChart,
} from './spcchart.js';

const MIN_REFRESH_MS = 1000;
/** Unacknowledged alarms listed per card (the count shows how many there are). */
const ALARMS_SHOWN = 8;
/** Newest points of a lot drawn on the dashboard (the lot report draws them all). */
const POINTS_SHOWN = 200;

const st = { busy: false, again: false, lastAt: 0, timer: 0 };
/** @type {Map<string, {card: HTMLElement, picked: string}>} */
const cards = new Map();

const keyOf = (c) => `${c.link}\u0000${c.field}`;

/**
 * Refreshes the panel: at once when `now`, else at most once a second (a call inside the
 * second is done at its end).
 * @param {boolean} [now]
 */
export async function refreshQuality(now) {
  const wait = MIN_REFRESH_MS - (Date.now() - st.lastAt);
  if (!now && wait > 0) {
    if (!st.timer) st.timer = setTimeout(() => { st.timer = 0; refreshQuality(true); }, wait);
    return;
  }
  if (st.busy) { st.again = true; return; }
  st.busy = true;
  st.lastAt = Date.now();
  try {
    await pull();
  } catch (e) {
    setText($('quality-note'), `Not updated: ${e && e.message ? e.message : e}`);
  } finally {
    st.busy = false;
  }
  if (st.again) { st.again = false; refreshQuality(true); }
}

async function pull() {
  const charts = (await api('GET', '/api/spc/')).results || [];
  $('quality-panel').hidden = charts.length === 0;
  if (!charts.length) return;
  const alarms = await api('GET', '/api/alarms/?acknowledged=false&limit=1');
  setText($('quality-note'), alarms.count
    ? `${alarms.count} unacknowledged alarm${alarms.count === 1 ? '' : 's'}`
    : 'No unacknowledged alarms');
  const seen = new Set();
  for (const c of charts) {
    const k = keyOf(c);
    seen.add(k);
    let entry = cards.get(k);
    if (!entry) {
      entry = { card: makeCard(c), picked: '' };
      cards.set(k, entry);
      $('quality').appendChild(entry.card);
    }
    await renderCard(entry, c);
  }
  for (const [k, entry] of cards) {
    if (!seen.has(k)) { entry.card.remove(); cards.delete(k); }
  }
}

function makeCard(c) {
  const card = el('article', 'spc-card');
  card.dataset.link = c.link;
  card.dataset.field = c.field;
  const head = el('div', 'spc-head');
  const title = el('h3', 'spc-title', c.field);
  title.appendChild(el('span', 'spc-link', ` · ${c.link}`));
  head.appendChild(title);
  head.appendChild(el('span', 'pill spc-state'));
  head.appendChild(el('dl', 'spc-cap'));
  const picker = el('label', 'spc-picker', 'Lot ');
  const select = /** @type {HTMLSelectElement} */ (el('select', 'spc-lot'));
  select.addEventListener('change', () => {
    const entry = cards.get(keyOf(c));
    if (entry) entry.picked = select.value;
    refreshQuality(true);
  });
  picker.appendChild(select);
  head.appendChild(picker);
  const report = /** @type {HTMLAnchorElement} */ (el('a', 'spc-report', 'Lot report'));
  report.hidden = true;
  head.appendChild(report);
  card.appendChild(head);
  const figs = el('div', 'spc-charts');
  for (const kind of ['mean', 'range']) {
    const fig = el('figure', `spc-fig spc-fig-${kind}`);
    fig.appendChild(el('figcaption', 'spc-caption'));
    fig.appendChild(svgChart(`spc-${kind}`));
    figs.appendChild(fig);
  }
  card.appendChild(figs);
  card.appendChild(el('p', 'spc-legend', Object.entries(RULE_MEANINGS)
    .map(([rule, meaning]) => `${RULE_LABELS[rule]}: ${meaning}`).join(' · ')));
  const alarms = el('div', 'spc-alarms');
  alarms.appendChild(el('h4', null, 'Unacknowledged alarms'));
  alarms.appendChild(el('ul', 'spc-alarm-list'));
  alarms.appendChild(el('p', 'empty spc-alarms-empty', 'None.'));
  card.appendChild(alarms);
  return card;
}

function capabilityFacts(c) {
  const facts = [
    ['Cp', fmtNum(c.cp, 3)], ['Cpk', fmtNum(c.cpk, 3)], ['σ̂', fmtNum(c.sigma)],
    [c.state === 'baselining' ? 'Baseline' : 'Subgroups',
      c.state === 'baselining' ? `${c.subgroups} of ${c.baseline}` : String(c.subgroups)],
  ];
  if (c.skipped) facts.push(['Skipped', String(c.skipped)]);
  return facts;
}

async function renderCard(entry, c) {
  const card = entry.card;
  const base = `/api/spc/${seg(c.link)}/${seg(c.field)}`;
  const alarms = await api('GET',
    `/api/alarms/?acknowledged=false&link=${seg(c.link)}&field=${seg(c.field)}&limit=${ALARMS_SHOWN}`);
  const stateEl = card.querySelector('.spc-state');
  stateEl.dataset.state = alarms.count ? 'down' : (c.state === 'monitoring' ? 'up' : 'connecting');
  setText(stateEl, c.state === 'monitoring' ? 'Monitoring' : 'Setting limits');
  const cap = card.querySelector('.spc-cap');
  cap.replaceChildren();
  for (const [k, v] of capabilityFacts(c)) {
    const d = el('div');
    d.appendChild(el('dt', null, k));
    d.appendChild(el('dd', null, v));
    cap.appendChild(d);
  }
  const lots = (await api('GET', `${base}/lots/`)).results || [];
  fillPicker(card.querySelector('.spc-lot'), lots, entry.picked);
  const query = `?last=${POINTS_SHOWN}${entry.picked ? `&${entry.picked}` : ''}`;
  const pts = await api('GET', `${base}/points/${query}`);
  const report = /** @type {HTMLAnchorElement} */ (card.querySelector('.spc-report'));
  report.hidden = pts.sequence === null || pts.sequence === undefined;
  if (!report.hidden) report.href = `/lots/${seg(String(pts.sequence))}`;
  const lotName = pts.lot || (pts.sequence ?? '–');
  const [meanFig, rangeFig] = card.querySelectorAll('.spc-fig');
  const [meanCaption, rangeCaption] = captions(c);
  setText(meanFig.querySelector('figcaption'), `${meanCaption} · lot ${lotName}`);
  setText(rangeFig.querySelector('figcaption'), rangeCaption);
  drawSpcPair(meanFig.querySelector('svg'), rangeFig.querySelector('svg'), c,
    pts.results || [], lotName);
  renderAlarms(card, alarms);
}

function fillPicker(select, lots, picked) {
  const options = [['', 'Newest (follows the line)']];
  for (const l of lots) {
    const value = l.sequence !== null && l.sequence !== undefined
      ? `sequence=${encodeURIComponent(String(l.sequence))}`
      : (l.lot ? `lot=${encodeURIComponent(l.lot)}` : '');
    if (value) options.push([value, `${l.lot || `sequence ${l.sequence}`} (${l.points})`]);
  }
  if (picked && !options.some(([v]) => v === picked)) options.push([picked, decodeURIComponent(picked.split('=')[1] || '')]);
  const same = select.options.length === options.length &&
    options.every(([v, t], i) => select.options[i].value === v && select.options[i].textContent === t);
  if (!same) {
    select.replaceChildren(...options.map(([v, t]) => {
      const o = /** @type {HTMLOptionElement} */ (el('option', null, t));
      o.value = v;
      return o;
    }));
  }
  select.value = picked;
}

function renderAlarms(card, page) {
  const alarms = page.results || [];
  const list = card.querySelector('.spc-alarm-list');
  list.replaceChildren();
  for (const a of alarms) {
    const li = el('li', 'spc-alarm-item');
    li.dataset.id = String(a.id);
    li.dataset.rule = a.rule;
    li.appendChild(el('time', 'spc-alarm-time', fmtTime(a.time)));
    li.appendChild(el('b', 'spc-alarm-rule', a.rule));
    const where = a.index === null ? 'film' : `subgroup ${a.index}`;
    li.appendChild(el('span', 'spc-alarm-where',
      `${where} · value ${fmtNum(a.value, 6)}${a.lot ? ` · lot ${a.lot}` : ''}`));
    const ack = el('button', 'btn btn-sm spc-ack', 'Ack');
    ack.type = 'button';
    ack.addEventListener('click', () => acknowledge(a.id, ack));
    li.appendChild(ack);
    list.appendChild(li);
  }
  const more = (page.count || 0) - alarms.length;
  if (more > 0) list.appendChild(el('li', 'spc-alarm-more', `and ${more} more`));
  card.querySelector('.spc-alarms-empty').hidden = alarms.length > 0;
}

async function acknowledge(id, button) {
  button.disabled = true;
  try {
    await api('POST', `/api/alarms/${id}/ack`);
    toast(`Alarm ${id} acknowledged.`);
  } catch (e) {
    toast(`Alarm ${id} not acknowledged: ${e && e.message ? e.message : e}`, true);
    button.disabled = false;
  }
  refreshQuality(true);
}
