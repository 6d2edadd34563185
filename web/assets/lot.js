// @ts-check
// The lot report (`/lots/{id}`, printable on A4): for each watched field with points in the
// lot, its control charts, the capability of the limits (Cp, Cpk) and the lot's own (mean,
// standard deviation, Pp, Ppk), and the lot's alarms. `{id}` is the lot's sequence id in the
// records service.

import { answerToken, api } from './api.js';
import { $, el, setText } from './dom.js';
import { pad, parseTime } from './format.js';
import { RULE_MEANINGS, captions, drawSpcPair, fmtNum, seg, svgChart } from './spcchart.js';

/** Date, time and UTC offset: a report of record says when, not only what time. */
function fmtDateTime(iso) {
  const d = parseTime(iso);
  if (!d) return iso ? String(iso) : '–';
  const off = -d.getTimezoneOffset();
  const zone = `${off < 0 ? '−' : '+'}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${zone}`;
}

/** Alarms of the lot beyond those fetched (more than 1000). */
let alarmsCut = 0;

function lotId() {
  const parts = location.pathname.split('/').filter(Boolean);
  return decodeURIComponent(parts[1] || '');
}

function table(headers, rows, cls) {
  const t = el('table', `table ${cls || ''}`);
  const head = el('tr');
  for (const h of headers) head.appendChild(el('th', null, h));
  const thead = el('thead');
  thead.appendChild(head);
  t.appendChild(thead);
  const body = el('tbody');
  for (const r of rows) {
    const tr = el('tr');
    for (const cell of r) tr.appendChild(el('td', null, cell));
    body.appendChild(tr);
  }
  t.appendChild(body);
  return t;
}

async function render() {
  const id = lotId();
  $('csv').href = `/api/sequences/${seg(id)}/films.csv`;
  let sequence = null;
  try {
    sequence = await api('GET', `/api/sequences/${seg(id)}/`);
  } catch (_) {
    // Posted to another records service: the charts still know the lot, the CSV does not.
    $('csv').hidden = true;
  }
  const charts = ((await api('GET', '/api/spc/')).results || [])
    .filter((c) => !sequence || c.link === sequence.source);
  const alarms = await api('GET', `/api/alarms/?sequence=${seg(id)}&limit=1000`);
  alarmsCut = Math.max(0, (alarms.count || 0) - (alarms.results || []).length);
  let shown = 0;
  let lotKey = sequence ? sequence.key : null;
  for (const c of charts) {
    const pts = await api('GET',
      `/api/spc/${seg(c.link)}/${seg(c.field)}/points/?sequence=${seg(id)}`);
    const points = pts.results || [];
    if (!points.length) continue;
    shown += 1;
    if (sequence && pts.lot && sequence.key !== pts.lot) {
      // Posted to another records service: this id there is not the local sequence.
      sequence = null;
      $('csv').hidden = true;
    }
    lotKey = pts.lot || lotKey;
    $('report').appendChild(section(c, pts, points,
      (alarms.results || []).filter((a) => a.link === c.link && a.field === c.field)));
  }
  $('report-empty').hidden = shown > 0;
  setText($('lot-title'), `Lot ${lotKey || id}`);
  const facts = [`sequence ${id}`];
  if (sequence) facts.push(`link ${sequence.source}`, `started ${fmtDateTime(sequence.created)}`);
  facts.push(`printed ${fmtDateTime(new Date().toISOString())}`);
  facts.push('limits and capability as the charts hold them now');
  setText($('lot-facts'), facts.join(' · '));
  document.title = `Lot ${lotKey || id} · filmgate`;
  document.body.dataset.ready = 'true';
}

function section(c, pts, points, alarms) {
  const s = el('section', 'report-field');
  s.dataset.field = c.field;
  s.appendChild(el('h2', null, `${c.field} · ${c.link}`));
  const svgs = [svgChart('spc-mean'), svgChart('spc-range')];
  captions(c).forEach((caption, i) => {
    const fig = el('figure', 'spc-fig');
    fig.appendChild(el('figcaption', 'spc-caption', caption));
    fig.appendChild(svgs[i]);
    s.appendChild(fig);
  });
  drawSpcPair(svgs[0], svgs[1], c, points, pts.lot || lotId());
  const sum = pts.summary || {};
  s.appendChild(table(
    ['', 'Mean', 'σ', 'Cp / Pp', 'Cpk / Ppk', 'LSL', 'USL'],
    [
      ['Control limits', fmtNum(c.center), fmtNum(c.sigma), fmtNum(c.cp, 3), fmtNum(c.cpk, 3),
        fmtNum(c.lsl), fmtNum(c.usl)],
      [`This lot (${sum.n ?? 0} films)`, fmtNum(sum.mean), fmtNum(sum.sd), fmtNum(sum.pp, 3),
        fmtNum(sum.ppk, 3), fmtNum(c.lsl), fmtNum(c.usl)],
    ], 'report-cap'));
  s.appendChild(el('h3', null, `Alarms in this lot (${alarms.length}` +
    `${alarmsCut ? `; the newest 1000 of all fields are listed, ${alarmsCut} older not` : ''})`));
  if (alarms.length) {
    s.appendChild(table(['Time', 'Rule', 'Subgroup', 'Value', 'Acknowledged'],
      alarms.slice().reverse().map((a) => [fmtDateTime(a.time), `${a.rule} (${RULE_MEANINGS[a.rule] || ''})`,
        a.index === null ? 'film' : String(a.index), fmtNum(a.value, 6), a.acknowledged ? 'yes' : 'no']),
      'report-alarms'));
  } else {
    s.appendChild(el('p', 'empty', 'None.'));
  }
  return s;
}

function start() {
  $('print').addEventListener('click', () => window.print());
  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const t = /** @type {HTMLInputElement} */ ($('token-input')).value.trim();
    if (t) answerToken(t);
  });
  $('token-cancel').addEventListener('click', () => answerToken(null));
  render().catch((e) => {
    const banner = $('api-error');
    banner.textContent = `The report could not be made: ${e && e.message ? e.message : e}`;
    banner.hidden = false;
  });
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
