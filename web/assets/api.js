// @ts-check
// The same-origin JSON API: requests, the bearer token (asked for inline on a 401 and kept in
// localStorage), and the read session a gateway with protected reads needs.

import { $ } from './dom.js';

const LS_TOKEN = 'filmgate.token';

/** @type {((token: string|null) => void)[] | null} Callers waiting for the token form. */
let tokenWaiters = null;

/** @type {() => void} Called once a read session is open (the event stream can start). */
let onSession = () => {};

/** @param {() => void} callback */
export function whenSessionOpens(callback) {
  onSession = callback;
}

// ---------- API ----------

export class ApiError extends Error {
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
  if (!tokenWaiters) {
    tokenWaiters = [];
    $('token-form').hidden = false;
    $('token-input').value = '';
  }
  $('token-input').focus();
  return new Promise((resolve) => tokenWaiters.push(resolve));
}

export function answerToken(token) {
  const waiters = tokenWaiters || [];
  tokenWaiters = null;
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

export async function api(method, path) {
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
      onSession();
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
