// filmgate dashboard.
//
// Data enters from the same-origin JSON API: `GET /api/refresh/` (first a full page, then deltas
// with the cursor), the `GET /api/events/` server-sent stream in Live mode, and
// `GET /api/queue/?state=dead` at each tick. Operator actions leave through the POST/DELETE
// endpoints, with a bearer token asked for on a 401 and kept in localStorage.
// Server text is only ever put in the page through textContent (no HTML from records).
'use strict';

(() => {
  const MAX_ROWS = 25;                 // rows kept in the sequences and films tables
  const CHART_WINDOW_MS = 5 * 60 * 1000;
  const DEAD_LIMIT = 50;
  const LIVE_HEARTBEAT_MS = 5000;      // Live mode: poll this often anyway (dead list, liveness)
  const LIVE_FALLBACK_MS = 2000;       // Live mode without a working stream
  const SSE_RETRY_MS = 15000;          // Live mode: reopen a stream the browser gave up on
  const MAX_CATCHUP_PAGES = 4;         // beyond this, jump to the newest page instead
  const LS_MODE = 'filmgate.refresh';
  const LS_TOKEN = 'filmgate.token';
  const MODES = ['live', '1000', '2000', '5000', '10000', 'off'];

  const $ = (id) => document.getElementById(id);

  const st = {
    mode: 'live',
    cursor: null,
    loaded: false,          // the first full page has been applied
    busy: false,
    again: false,           // a tick was asked for while one was running
    timer: 0,
    failures: 0,
    failingSince: 0,
    lastOkAt: 0,
    es: null,
    esOpen: false,
    esFailed: false,        // the browser gave up on the stream; polling until it reopens
    esRetryTimer: 0,
    lastEventAt: 0,
    deadBusy: false,
    deadAgain: false,
    deadCount: null,
    lastStats: null,
    links: [],
    history: [],            // {t, r, p}: read and post rate samples for the chart
    tokenWaiters: null,
  };

  // ---------- formatting ----------

  const nf0 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  const nf1 = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });

  function fmtInt(n) {
    return typeof n === 'number' && Number.isFinite(n) ? nf0.format(n) : '–';
  }

  function fmtRate(x) {
    if (typeof x !== 'number' || !Number.isFinite(x)) return '–';
    return x >= 100 ? nf0.format(x) : nf1.format(x);
  }

  function fmtAge(ms) {
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

  const pad = (n, w = 2) => String(n).padStart(w, '0');

  function parseTime(iso) {
    if (!iso) return null;
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? null : d;
  }

  // Local wall-clock time; the date is added when it is not today.
  function fmtTime(iso, withMs) {
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

  function fmtValue(v) {
    if (v === null || v === undefined) return '∅';
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }

  // ---------- DOM helpers (textContent only) ----------

  // Direction controls (LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI, LRM, RLM, ALM) in text
  // from outside are shown as what they are: a lot named "LOT<RLO>gnp.exe" must not read
  // as "LOTexe.png".
  const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/g;
  function shown(text) {
    return String(text).replace(BIDI_CONTROLS,
      (c) => `⟨U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}⟩`);
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = shown(text);
    return e;
  }

  // A cell of text from outside: cut by the stylesheet when long, whole in its title.
  function outside(tag, cls, text) {
    const e = el(tag, cls, text);
    e.title = e.textContent;
    return e;
  }

  function setText(node, text) {
    const t = shown(text);
    if (node.textContent !== t) node.textContent = t;
  }

  function setNum(id, value, text) {
    const node = $(id);
    node.title = String(text);
    node.dataset.value = value === undefined || value === null ? '' : String(value);
    setText(node, text);
  }

  let toastTimer = 0;
  function toast(msg, isError) {
    const t = $('toast');
    t.textContent = msg;
    t.classList.toggle('error', !!isError);
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, isError ? 7000 : 3500);
  }

  // ---------- API ----------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function storedToken() {
    try { return localStorage.getItem(LS_TOKEN) || ''; } catch (_) { return ''; }
  }

  function storeToken(t) {
    try {
      if (t) localStorage.setItem(LS_TOKEN, t); else localStorage.removeItem(LS_TOKEN);
    } catch (_) { /* private mode: the token lives for this call only */ }
  }

  // Shows the inline token field; resolves with the token, or null when cancelled.
  function askToken(hint) {
    $('token-hint').textContent = hint || '';
    if (!st.tokenWaiters) {
      st.tokenWaiters = [];
      $('token-form').hidden = false;
      $('token-input').value = '';
    }
    $('token-input').focus();
    return new Promise((resolve) => st.tokenWaiters.push(resolve));
  }

  function answerToken(token) {
    const waiters = st.tokenWaiters || [];
    st.tokenWaiters = null;
    $('token-form').hidden = true;
    $('token-input').value = '';
    for (const w of waiters) w(token);
  }

  // Reads protected (web.protect_reads): trade the token once for a session cookie, which
  // authorizes every read and the event stream (EventSource sends no header). True if the
  // server opened one.
  async function openSession(token) {
    try {
      const res = await fetch('/api/session', {
        method: 'POST',
        headers: { Accept: 'application/json', Authorization: `Bearer ${token}` },
        cache: 'no-store',
      });
      return res.ok;
    } catch (_) {
      return false;
    }
  }

  async function api(method, path) {
    let sessionOpened = false;
    let refused = false;
    for (;;) {
      const headers = { Accept: 'application/json' };
      const token = method === 'GET' ? '' : storedToken();
      if (token) headers.Authorization = `Bearer ${token}`;
      let res;
      try {
        res = await fetch(path, { method, headers, cache: 'no-store' });
      } catch (_) {
        throw new ApiError(0, 'the server cannot be reached');
      }
      if (res.status === 401 && method === 'GET' && !sessionOpened) {
        let t = storedToken();
        if (!t || !(await openSession(t))) {
          storeToken('');
          t = await askToken(t || refused
            ? 'That token was refused.'
            : 'This gateway protects its data: the API token is needed to read it.');
          if (!t) throw new ApiError(401, 'an API token is needed to read this gateway');
          if (!(await openSession(t))) {
            refused = true;
            continue;
          }
          storeToken(t);
        }
        sessionOpened = true;
        if (st.mode === 'live' && !st.esOpen) openStream();
        continue;
      }
      if (res.status === 401 && method !== 'GET') {
        if (token) storeToken('');
        const t = await askToken(token ? 'That token was refused.' : '');
        if (!t) throw new ApiError(401, 'an API token is needed for this action');
        storeToken(t);
        continue;
      }
      if (res.status === 204) return null;
      const text = await res.text();
      let body = null;
      if (text) {
        try { body = JSON.parse(text); } catch (_) { body = null; }
      }
      if (!res.ok) {
        const msg = body && typeof body.error === 'string' ? body.error : `HTTP ${res.status}`;
        throw new ApiError(res.status, msg);
      }
      if (text && body === null) throw new ApiError(res.status, 'the answer was not JSON');
      return body;
    }
  }

  // ---------- cursor ----------

  function parseCursor(c) {
    const m = /^s(\d+)\.f(\d+)$/.exec(String(c || ''));
    return m ? [Number(m[1]), Number(m[2])] : null;
  }

  // The newer of two cursors (component-wise); an unknown format: the one received last.
  function newerCursor(ours, theirs) {
    if (!theirs) return ours;
    const a = parseCursor(ours);
    const b = parseCursor(theirs);
    if (!a || !b) return theirs;
    return `s${Math.max(a[0], b[0])}.f${Math.max(a[1], b[1])}`;
  }

  // ---------- applying a refresh ----------

  function apply(data, fromStream) {
    if (!data || typeof data !== 'object') return;
    if (data.cursor) st.cursor = newerCursor(st.cursor, data.cursor);
    if (Array.isArray(data.sequences)) mergeRows($('sequences'), data.sequences, buildSequenceRow);
    if (Array.isArray(data.films)) mergeRows($('films'), data.films, buildFilmRow);
    $('sequences-empty').hidden = $('sequences').children.length > 0;
    $('films-empty').hidden = $('films').children.length > 0;
    if (data.queue) renderQueue(data.queue);
    if (Array.isArray(data.links)) renderLinks(data.links);
    markOk();
    if (fromStream && data.queue && data.queue.dead !== st.deadCount) refreshDead().catch(() => {});
  }

  // Inserts rows not shown yet, ordered by id, newest on top, keeping MAX_ROWS.
  function mergeRows(tbody, rows, build) {
    const have = new Set();
    for (const tr of tbody.children) have.add(tr.dataset.id);
    const fresh = rows
      .filter((r) => r && r.id !== undefined && !have.has(String(r.id)))
      .sort((a, b) => Number(b.id) - Number(a.id));
    if (!fresh.length) return;
    const flash = st.loaded;
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

  // ---------- queue ----------

  function renderQueue(q) {
    st.lastStats = q;
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

  function renderLinks(links) {
    st.links = links;
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
  function tickAges() {
    const now = Date.now();
    for (const v of document.querySelectorAll('#links [data-field="last_frame_age"]')) {
      const d = parseTime(v.dataset.at);
      setText(v, d ? `${fmtAge(Math.max(0, now - d.getTime()))} ago` : 'never');
      v.title = v.dataset.at || '';
    }
    if (st.lastOkAt) {
      const stale = now - st.lastOkAt;
      const t = $('last-update');
      const d = new Date(st.lastOkAt);
      setText(t, `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` +
        (stale >= 10000 ? ` (${fmtAge(stale)} ago)` : ''));
      t.dateTime = d.toISOString();
    }
  }

  async function restartLink(name, btn) {
    btn.disabled = true;
    try {
      await api('POST', `/api/links/${encodeURIComponent(name)}/restart`);
      toast(`Restart requested for ${name}.`);
      setTimeout(() => tick(), 600);
    } catch (e) {
      toast(`Restart of ${name} failed: ${e.message}`, true);
    } finally {
      setTimeout(() => { btn.disabled = false; }, 1500);
    }
  }

  // ---------- dead items ----------

  async function refreshDead() {
    if (st.deadBusy) { st.deadAgain = true; return; }
    st.deadBusy = true;
    try {
      const page = await api('GET', `/api/queue/?state=dead&limit=${DEAD_LIMIT}`);
      renderDead(page);
    } finally {
      st.deadBusy = false;
      if (st.deadAgain) { st.deadAgain = false; refreshDead().catch(() => {}); }
    }
  }

  function renderDead(page) {
    const items = page && Array.isArray(page.results) ? page.results : [];
    const count = page && typeof page.count === 'number' ? page.count : items.length;
    st.deadCount = count;
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
      tick();
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
      tick();
    }
  }

  async function retryAll() {
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
      tick();
    }
  }

  // ---------- chart ----------

  function sample(r, p) {
    const now = Date.now();
    const s = { t: now, r: Number(r) || 0, p: Number(p) || 0 };
    const last = st.history[st.history.length - 1];
    // Several answers within a quarter second: keep the newest only.
    if (last && now - last.t < 250) st.history[st.history.length - 1] = s;
    else st.history.push(s);
    const cut = now - CHART_WINDOW_MS - 10000;
    while (st.history.length && st.history[0].t < cut) st.history.shift();
    drawChart();
  }

  function niceStep(raw) {
    const p = 10 ** Math.floor(Math.log10(raw));
    const m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  function gapMs() {
    const every = Number(st.mode) || (st.esOpen ? 1000 : LIVE_FALLBACK_MS);
    return Math.max(6000, every * 2.5);
  }

  function drawChart() {
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
    const pts = st.history.filter((s) => s.t >= t0 - 10000);
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

  // ---------- connection status ----------

  function setConn(state, text) {
    const pill = $('conn-status');
    pill.dataset.state = state;
    setText($('conn-text'), text);
  }

  function modeLabel() {
    if (st.mode === 'off') return ['paused', 'Auto-refresh off'];
    if (st.mode === 'live') {
      if (st.esOpen) return ['live', 'Live'];
      if (st.esFailed) return ['polling', `Polling every ${LIVE_FALLBACK_MS / 1000} s (no live stream)`];
      return ['polling', 'Live (stream connecting)'];
    }
    return ['polling', `Polling every ${Number(st.mode) / 1000} s`];
  }

  function markOk() {
    st.lastOkAt = Date.now();
    st.failures = 0;
    st.failingSince = 0;
    $('api-error').hidden = true;
    const [s, t] = modeLabel();
    setConn(s, t);
    tickAges();
  }

  function markFailed(err) {
    st.failures += 1;
    if (!st.failingSince) st.failingSince = Date.now();
    const banner = $('api-error');
    banner.textContent = '';
    banner.appendChild(el('strong', null, 'No answer from the filmgate API:'));
    const since = new Date(st.failingSince);
    banner.appendChild(el('span', null,
      `${err && err.message ? err.message : 'Request failed'} (since ${pad(since.getHours())}:${pad(since.getMinutes())}:${pad(since.getSeconds())}). ` +
      'Retrying; the figures below are the last ones received.'));
    banner.hidden = false;
    setConn('offline', 'Offline, retrying');
  }

  // ---------- refresh loop ----------

  async function pull() {
    if (!st.loaded || !st.cursor) {
      const data = await api('GET', '/api/refresh/');
      apply(data, false);
      st.loaded = true;
    } else {
      for (let page = 0; ; page++) {
        const data = await api('GET', `/api/refresh/?cursor=${encodeURIComponent(st.cursor)}`);
        apply(data, false);
        const full = (data.films || []).length >= 500 || (data.sequences || []).length >= 500;
        if (!full) break;
        if (page + 1 >= MAX_CATCHUP_PAGES) {
          // Far behind (a flood): only the newest rows are shown, so jump to them.
          apply(await api('GET', '/api/refresh/'), false);
          break;
        }
      }
    }
    await refreshDead();
  }

  function nextDelay() {
    if (st.failures > 0) {
      const backoff = Math.min(10000, 1000 * 2 ** Math.min(st.failures - 1, 4));
      const every = Number(st.mode) || 0;
      return Math.max(backoff, every);
    }
    if (st.mode === 'off') return 0;
    if (st.mode === 'live') return st.esOpen ? LIVE_HEARTBEAT_MS : LIVE_FALLBACK_MS;
    return Number(st.mode);
  }

  async function tick() {
    clearTimeout(st.timer);
    if (st.busy) { st.again = true; return; }
    st.busy = true;
    $('refresh-now').disabled = true;
    try {
      await pull();
      markOk();
    } catch (e) {
      markFailed(e);
    } finally {
      st.busy = false;
      $('refresh-now').disabled = false;
    }
    if (st.again) {
      st.again = false;
      st.timer = setTimeout(tick, 0);
      return;
    }
    const d = nextDelay();
    if (d > 0) st.timer = setTimeout(tick, d);
  }

  // ---------- server-sent events ----------

  function openStream() {
    closeStream();
    if (st.mode !== 'live' || typeof EventSource === 'undefined') return;
    const es = new EventSource('/api/events/');
    st.es = es;
    es.addEventListener('open', () => {
      st.esOpen = true;
      st.esFailed = false;
      // Catch up on what happened between the last poll and the stream's start.
      tick();
    });
    es.addEventListener('refresh', (ev) => {
      st.lastEventAt = Date.now();
      let data;
      try { data = JSON.parse(ev.data); } catch (_) { return; }
      apply(data, true);
    });
    es.addEventListener('error', () => {
      const wasOpen = st.esOpen;
      st.esOpen = false;
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (not an event stream, or refused): poll, and try again later.
        closeStream();
        st.esFailed = true;
        st.esRetryTimer = setTimeout(openStream, SSE_RETRY_MS);
      }
      if (wasOpen) tick();
    });
  }

  function closeStream() {
    clearTimeout(st.esRetryTimer);
    if (st.es) st.es.close();
    st.es = null;
    st.esOpen = false;
  }

  function setMode(mode) {
    st.mode = MODES.includes(mode) ? mode : 'live';
    $('refresh-mode').value = st.mode;
    try { localStorage.setItem(LS_MODE, st.mode); } catch (_) { /* not remembered */ }
    st.esFailed = false;
    if (st.mode === 'live') openStream(); else closeStream();
    tick();
  }

  // ---------- start ----------

  function start() {
    let saved = 'live';
    try { saved = localStorage.getItem(LS_MODE) || 'live'; } catch (_) { /* default */ }
    // A kiosk bookmark may carry the mode: /?refresh=live|1000|2000|5000|10000|off
    const asked = new URLSearchParams(location.search).get('refresh');
    if (asked && MODES.includes(asked)) saved = asked;
    $('refresh-mode').addEventListener('change', (e) => setMode(e.target.value));
    $('refresh-now').addEventListener('click', () => tick());
    $('retry-all').addEventListener('click', retryAll);
    $('token-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const t = $('token-input').value.trim();
      if (t) answerToken(t);
    });
    $('token-cancel').addEventListener('click', () => answerToken(null));
    window.addEventListener('resize', drawChart);
    if (window.matchMedia) {
      const mq = window.matchMedia('(prefers-color-scheme: dark)');
      if (mq.addEventListener) mq.addEventListener('change', drawChart);
    }
    setInterval(() => { tickAges(); drawChart(); }, 1000);
    drawChart();
    setMode(saved);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
