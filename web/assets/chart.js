// @ts-check
// The throughput chart: read and post rates of the last minutes on a canvas, drawn by the
// page itself (no library, no CDN). A gap in the samples (no answer) is drawn as a gap.

import { $ } from './dom.js';
import { fmtRate } from './format.js';

const CHART_WINDOW_MS = 5 * 60 * 1000;

/** @type {{t: number, r: number, p: number}[]} Read and post rate samples. */
const history = [];

/** @type {() => number} How often answers are expected now (ms), to tell gaps. */
let refreshEveryMs = () => 2000;

/** @param {() => number} every */
export function setRefreshEvery(every) {
  refreshEveryMs = every;
}

// ---------- chart ----------

export function sample(r, p) {
  const now = Date.now();
  const s = { t: now, r: Number(r) || 0, p: Number(p) || 0 };
  const last = history[history.length - 1];
  // Several answers within a quarter second: keep the newest only.
  if (last && now - last.t < 250) history[history.length - 1] = s;
  else history.push(s);
  const cut = now - CHART_WINDOW_MS - 10000;
  while (history.length && history[0].t < cut) history.shift();
  drawChart();
}

function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

function gapMs() {
  return Math.max(6000, refreshEveryMs() * 2.5);
}

export function drawChart() {
  const canvas = $('chart');
  const box = canvas.parentElement;
  const w = box.clientWidth;
  const h = box.clientHeight;
  if (!w || !h) return;
  const dpr = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);

  const css = getComputedStyle(document.documentElement);
  const col = (name) => css.getPropertyValue(name).trim();
  const cRead = col('--chart-read');
  const cPost = col('--chart-post');
  const cGrid = col('--chart-grid');
  const cAxis = col('--chart-axis');
  const font = `12px ${getComputedStyle(document.body).fontFamily}`;

  const now = Date.now();
  const t0 = now - CHART_WINDOW_MS;
  const pts = history.filter((s) => s.t >= t0 - 10000);
  let max = 0;
  for (const s of pts) max = Math.max(max, s.r, s.p);
  const step = niceStep(Math.max(max, 1) / 5);
  const top = Math.max(step * Math.ceil(max / step), step * 2);

  ctx.font = font;
  const labels = [];
  for (let v = 0; v <= top + step / 1000; v += step) labels.push(v);
  const decimals = Number.isInteger(step) ? 0 : Math.min(3, Math.ceil(-Math.log10(step)));
  const fmt = (v) => v.toLocaleString(undefined, { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
  const padL = Math.ceil(Math.max(...labels.map((v) => ctx.measureText(fmt(v)).width))) + 14;
  const padR = 14;
  const padT = 10;
  const padB = 24;
  const pw = w - padL - padR;
  const ph = h - padT - padB;
  const x = (t) => padL + ((t - t0) / CHART_WINDOW_MS) * pw;
  const y = (v) => padT + ph - (v / top) * ph;

  // Grid and axis labels.
  ctx.lineWidth = 1;
  ctx.strokeStyle = cGrid;
  ctx.fillStyle = cAxis;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const v of labels) {
    const yy = Math.round(y(v)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(padL, yy);
    ctx.lineTo(padL + pw, yy);
    ctx.stroke();
    ctx.fillText(fmt(v), padL - 8, yy);
  }
  ctx.textBaseline = 'top';
  for (let m = 5; m >= 0; m--) {
    const xx = Math.round(x(now - m * 60000)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(xx, padT);
    ctx.lineTo(xx, padT + ph);
    ctx.stroke();
    ctx.textAlign = m === 0 ? 'right' : m === 5 ? 'left' : 'center';
    ctx.fillText(m === 0 ? 'now' : `−${m} min`, xx, padT + ph + 7);
  }

  if (!pts.length) {
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText('Waiting for data…', padL + pw / 2, padT + ph / 2);
    return;
  }

  // Runs of samples without a gap (a gap: the page was not refreshing).
  const gap = gapMs();
  const runs = [];
  let run = [];
  for (const s of pts) {
    if (run.length && s.t - run[run.length - 1].t > gap) { runs.push(run); run = []; }
    run.push(s);
  }
  if (run.length) runs.push(run);

  ctx.save();
  ctx.beginPath();
  ctx.rect(padL, padT - 2, pw, ph + 4);
  ctx.clip();
  const series = [['r', cRead], ['p', cPost]];
  for (const [key, color] of series) {
    for (const r of runs) {
      ctx.beginPath();
      r.forEach((s, i) => (i ? ctx.lineTo(x(s.t), y(s[key])) : ctx.moveTo(x(s.t), y(s[key]))));
      if (r.length > 1 && key === 'r') {
        ctx.lineTo(x(r[r.length - 1].t), y(0));
        ctx.lineTo(x(r[0].t), y(0));
        ctx.closePath();
        ctx.globalAlpha = 0.08;
        ctx.fillStyle = color;
        ctx.fill();
        ctx.globalAlpha = 1;
      }
      ctx.beginPath();
      r.forEach((s, i) => (i ? ctx.lineTo(x(s.t), y(s[key])) : ctx.moveTo(x(s.t), y(s[key]))));
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.lineJoin = 'round';
      ctx.stroke();
    }
    const last = pts[pts.length - 1];
    ctx.beginPath();
    ctx.arc(x(last.t), y(last[key]), 3.5, 0, Math.PI * 2);
    ctx.fillStyle = color;
    ctx.fill();
  }
  ctx.restore();
}
