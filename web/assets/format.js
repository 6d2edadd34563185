// @ts-check
// Formatting for the dashboard: numbers, rates, ages and times as the page shows them. Pure.

const nf0 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const nf1 = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });

export function fmtInt(n) {
  return typeof n === 'number' && Number.isFinite(n) ? nf0.format(n) : '–';
}

export function fmtRate(x) {
  if (typeof x !== 'number' || !Number.isFinite(x)) return '–';
  return x >= 100 ? nf0.format(x) : nf1.format(x);
}

export function fmtAge(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return '–';
  const s = Math.floor(ms / 1000);
  if (s < 1) return '< 1 s';
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m} min ${s % 60} s`;
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

export const pad = (n, w = 2) => String(n).padStart(w, '0');

export function parseTime(iso) {
  if (!iso) return null;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

// Local wall-clock time; the date is added when it is not today.
export function fmtTime(iso, withMs) {
  const d = parseTime(iso);
  if (!d) return iso ? String(iso) : '–';
  let s = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (withMs) s += `.${pad(d.getMilliseconds(), 3)}`;
  const now = new Date();
  if (d.toDateString() !== now.toDateString()) {
    s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${s}`;
  }
  return s;
}

export function fmtValue(v) {
  if (v === null || v === undefined) return '∅';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
