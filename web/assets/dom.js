// @ts-check
// DOM helpers. Server text is only ever put in the page through textContent (no HTML from
// records), with direction controls shown as what they are.

/**
 * The page's element with this id. Typed loosely (`any`): the ids are the page's own, each
 * used as the element it is (an input, a canvas, a button).
 * @param {string} id
 * @returns {any}
 */
export const $ = (id) => document.getElementById(id);


// Direction controls (LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI, LRM, RLM, ALM) in text
// from outside are shown as what they are: a lot named "LOT<RLO>gnp.exe" must not read
// as "LOTexe.png".
const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/g;
export function shown(text) {
  return String(text).replace(BIDI_CONTROLS,
    (c) => `⟨U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}⟩`);
}

export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = shown(text);
  return e;
}

// A cell of text from outside: cut by the stylesheet when long, whole in its title.
export function outside(tag, cls, text) {
  const e = el(tag, cls, text);
  e.title = e.textContent;
  return e;
}

export function setText(node, text) {
  const t = shown(text);
  if (node.textContent !== t) node.textContent = t;
}

export function setNum(id, value, text) {
  const node = $(id);
  node.title = String(text);
  node.dataset.value = value === undefined || value === null ? '' : String(value);
  setText(node, text);
}

let toastTimer = 0;
export function toast(msg, isError) {
  const t = $('toast');
  t.textContent = msg;
  t.classList.toggle('error', !!isError);
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, isError ? 7000 : 3500);
}
