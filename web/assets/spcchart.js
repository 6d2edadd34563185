// @ts-check
// Control charts as SVG, shared by the dashboard's quality panel (quality.js) and the lot
// report (lot.js): the plotted values of one lot, the center line, the control limits and the
// spec limits, and each point that fired a rule marked in red and named (a short label on the
// chart, the full rule names in its tooltip). Server text goes in through textContent only.

const SVG = 'http://www.w3.org/2000/svg';
const W = 640;
const H = 200;
const PAD = { left: 62, right: 74, top: 12, bottom: 22 };

/** Short labels of the rules on the chart; the full names are in the point's tooltip. */
export const RULE_LABELS = {
  beyond_3sigma: '3σ',
  '2_of_3_beyond_2sigma': '2/3',
  '4_of_5_beyond_1sigma': '4/5',
  '8_on_one_side': '8',
  range_beyond_ucl: 'R',
  out_of_spec: 'spec',
};

/** What each rule means, one line (the legend and the lot report). */
export const RULE_MEANINGS = {
  beyond_3sigma: 'a point beyond a control limit',
  '2_of_3_beyond_2sigma': '2 of the last 3 beyond 2σ on one side',
  '4_of_5_beyond_1sigma': '4 of the last 5 beyond 1σ on one side',
  '8_on_one_side': 'the last 8 on one side of the center line',
  range_beyond_ucl: 'a range above its control limit',
  out_of_spec: 'a film outside the spec limits',
};

/** A path segment of the API (a link or field name as typed in the config). */
export const seg = (s) => encodeURIComponent(s);

/** An empty chart element. */
export function svgChart(cls) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', `spc-chart ${cls}`);
  return svg;
}

/** The captions of a chart's pair: X̄ (or I), and R (or MR). */
export function captions(c) {
  return c.subgroup === 1
    ? ['Individuals (I)', 'Moving range (MR)']
    : [`X̄ (mean of ${c.subgroup})`, `Range (R of ${c.subgroup})`];
}

/**
 * Draws a chart's pair for `points` of one lot: the means (values) with the control and spec
 * limits of `c` (an `/api/spc/` chart), and the ranges (moving ranges) with the range chart's.
 * A point's `range_beyond_ucl` is marked on the range chart, its other rules on the means.
 */
export function drawSpcPair(meanSvg, rangeSvg, c, points, lotName) {
  const what = c.subgroup === 1 ? ['values', 'moving ranges'] : ['subgroup means', 'subgroup ranges'];
  const complete = points.map((p) => p.index !== null);
  drawSpcChart(meanSvg, {
    values: points.map((p) => p.mean),
    marks: points.map((p) => p.alarms.filter((r) => r !== 'range_beyond_ucl')),
    complete, center: c.center, ucl: c.ucl, lcl: c.lcl, lsl: c.lsl, usl: c.usl,
    label: `${c.field} of ${c.link}: ${what[0]} of lot ${lotName}`,
  });
  drawSpcChart(rangeSvg, {
    values: points.map((p) => p.range),
    marks: points.map((p) => p.alarms.filter((r) => r === 'range_beyond_ucl')),
    complete, center: c.range.center, ucl: c.range.ucl, lcl: c.range.lcl,
    label: `${c.field} of ${c.link}: ${what[1]} of lot ${lotName}`,
  });
}

function node(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A number for an axis or a label: enough digits to tell the limits apart. */
export function fmtNum(v, digits = 4) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
  return Number(v.toPrecision(digits + 2)).toString();
}

/**
 * Draws one chart into `svg` (its old content is replaced).
 * @param {SVGSVGElement} svg
 * @param {{ values: (number|null)[], marks: string[][], complete: boolean[],
 *   center?: number|null, ucl?: number|null, lcl?: number|null,
 *   lsl?: number|null, usl?: number|null, label: string }} c
 */
function drawSpcChart(svg, c) {
  svg.replaceChildren();
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', c.label);
  const lines = [
    { v: c.ucl, cls: 'spc-limit', name: 'UCL' },
    { v: c.center, cls: 'spc-center', name: 'CL' },
    { v: c.lcl, cls: 'spc-limit', name: 'LCL' },
    { v: c.usl, cls: 'spc-spec', name: 'USL' },
    { v: c.lsl, cls: 'spc-spec', name: 'LSL' },
  ].filter((l) => typeof l.v === 'number' && Number.isFinite(l.v));
  const finite = c.values.filter((v) => typeof v === 'number' && Number.isFinite(v));
  const all = finite.concat(lines.map((l) => /** @type {number} */ (l.v)));
  // A loop, not Math.min(...all): a long lot would overflow the call's arguments.
  let lo = all.length ? all.reduce((a, b) => Math.min(a, b)) : 0;
  let hi = all.length ? all.reduce((a, b) => Math.max(a, b)) : 1;
  if (hi - lo < 1e-12) { lo -= 1; hi += 1; }
  const margin = (hi - lo) * 0.08;
  lo -= margin; hi += margin;
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const y = (v) => PAD.top + (hi - v) / (hi - lo) * plotH;
  const n = Math.max(c.values.length, 2);
  const x = (i) => PAD.left + (c.values.length <= 1 ? plotW / 2 : i / (n - 1) * plotW);

  svg.appendChild(node('rect', {
    x: PAD.left, y: PAD.top, width: plotW, height: plotH, class: 'spc-frame',
  }));
  for (const l of lines) {
    const yy = y(l.v);
    svg.appendChild(node('line', {
      x1: PAD.left, x2: PAD.left + plotW, y1: yy, y2: yy, class: l.cls,
    }));
    svg.appendChild(node('text', {
      x: PAD.left + plotW + 4, y: yy + 4, class: `spc-line-label ${l.cls}`,
    }, `${l.name} ${fmtNum(l.v)}`));
  }
  for (const v of [lo + margin, hi - margin]) {
    svg.appendChild(node('text', { x: PAD.left - 6, y: y(v) + 4, class: 'spc-axis' }, fmtNum(v)));
  }
  // The line through the points, broken where a value is missing (a lot's first MR).
  const path = [];
  let penDown = false;
  c.values.forEach((v, i) => {
    if (typeof v !== 'number') { penDown = false; return; }
    path.push(`${penDown ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    penDown = true;
  });
  if (path.length) svg.appendChild(node('path', { d: path.join(' '), class: 'spc-series' }));
  c.values.forEach((v, i) => {
    if (typeof v !== 'number') return;
    const marks = c.marks[i] || [];
    const cls = marks.length ? 'spc-point spc-alarm' : (c.complete[i] ? 'spc-point' : 'spc-point spc-open');
    const dot = node('circle', { cx: x(i), cy: y(v), r: marks.length ? 4.5 : 3, class: cls });
    const tip = `${fmtNum(v, 6)}${c.complete[i] ? '' : ' (incomplete subgroup, not judged)'}` +
      (marks.length ? `\n${marks.join('\n')}` : '');
    dot.appendChild(node('title', {}, tip));
    svg.appendChild(dot);
    if (marks.length) {
      const text = marks.map((m) => RULE_LABELS[m] || m).join(' ');
      svg.appendChild(node('text', {
        x: x(i), y: Math.max(PAD.top + 10, y(v) - 8), class: 'spc-mark-label',
      }, text));
    }
  });
}
