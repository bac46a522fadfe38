// The coordinator's JSON API (docs/dashboard.md): the token, plain requests and pushed streams.
// The token lives in this tab's sessionStorage and goes only in an Authorization header.

const TOKEN_KEY = 'assay.token';
const authListeners = new Set();

export function getToken() { return sessionStorage.getItem(TOKEN_KEY) || ''; }
export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
}

// Called with no argument whenever the API answers 401: the page then asks for a token.
export function onUnauthorized(listener) {
  authListeners.add(listener);
  return () => authListeners.delete(listener);
}
function unauthorized() { for (const l of authListeners) l(); }

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code || '';
  }
}

function headers(extra) {
  const h = { Accept: 'application/json', ...extra };
  const token = getToken();
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

// Builds "/api/v1/PATH?k=v" from a params object, dropping empty values.
export function apiPath(path, params = {}) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') query.set(k, v);
  const q = query.toString();
  return `/api/v1/${path}${q ? `?${q}` : ''}`;
}

async function errorOf(response) {
  let message = `${response.status} ${response.statusText}`;
  let code = '';
  try {
    const body = await response.json();
    if (body && body.error) message = body.error;
    if (body && body.code) code = body.code;
  } catch { /* not JSON: keep the status line */ }
  if (response.status === 401) unauthorized();
  return new ApiError(response.status, message, code);
}

// A request with the token; the answer's JSON, or an ApiError.
export async function request(path, { method = 'GET', body, signal } = {}) {
  const init = { method, signal, headers: headers(body ? { 'Content-Type': 'application/json' } : {}) };
  if (body !== undefined) init.body = JSON.stringify(body);
  init.credentials = 'omit';
  const response = await fetch(path, init);
  if (!response.ok) throw await errorOf(response);
  return response.json();
}

// The bytes of a path (the log's raw view, an artifact), as a Blob.
export async function requestBlob(path, accept = 'text/plain') {
  const response = await fetch(path, { headers: headers({ Accept: accept }), credentials: 'omit' });
  if (!response.ok) throw await errorOf(response);
  return response.blob();
}

// Reads `data:` messages off a text/event-stream body; calls onMessage with each parsed JSON.
async function readEvents(response, onMessage, signal) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let data = [];
  while (!signal.aborted) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let start = 0;
    for (let nl = buffer.indexOf('\n', start); nl >= 0; nl = buffer.indexOf('\n', start)) {
      let line = buffer.slice(start, nl);
      start = nl + 1;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (data.length) onMessage(JSON.parse(data.join('\n')));
        data = [];
      } else if (line.startsWith('data:')) {
        data.push(line.slice(line[5] === ' ' ? 6 : 5));
      } // comments (": keep-alive") and other fields are ignored
    }
    buffer = buffer.slice(start);
  }
}

// Resolves when the tab is visible again (or the watch is closed).
function untilVisible(signal) {
  return new Promise((resolve) => {
    const done = () => {
      if (document.hidden && !signal.aborted) return;
      document.removeEventListener('visibilitychange', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    document.addEventListener('visibilitychange', done);
    signal.addEventListener('abort', done);
  });
}

// One connection of a watch: 'ended' (the server closed it), 'refused' (400, 401, 403, 404: asking
// again will not help), 'failed' (another error status) or 'hidden' (the tab was hidden); throws
// when the connection drops.
async function connect(path, signal, handlers) {
  const response = await fetch(path, { headers: headers({ Accept: 'text/event-stream' }), signal, credentials: 'omit' });
  if (!response.ok) {
    const error = await errorOf(response);
    handlers.onError(error);
    return [400, 401, 403, 404].includes(error.status) ? 'refused' : 'failed';
  }
  handlers.onOpen();
  let first = true;
  await readEvents(response, (message) => {
    if (first) { first = false; handlers.onError(null); }
    handlers.onMessage(message);
  }, signal);
  return signal.aborted ? 'hidden' : 'ended';
}

// Opens a pushed stream and keeps it open: when it drops, it is opened again after a backoff
// (0.5 s doubling to 15 s), unless `again()` says the stream has nothing more to tell (a job that
// ended). While the tab is hidden the stream is closed, and opened again when it shows: a browser
// keeps six connections to a server, and background tabs must not hold them all. `onOpen` is
// called before each connection's first message (to reset what was merged). Returns a function
// that closes it for good.
export function watch(path, { onMessage, onOpen = () => {}, onError = () => {}, again = () => true }) {
  const control = new AbortController();
  const handlers = { onMessage, onOpen, onError };
  let delay = 500;
  const run = async () => {
    while (!control.signal.aborted) {
      if (document.hidden) { await untilVisible(control.signal); continue; }
      const connection = new AbortController();
      const close = () => { if (document.hidden || control.signal.aborted) connection.abort(); };
      control.signal.addEventListener('abort', close);
      document.addEventListener('visibilitychange', close);
      let outcome;
      try {
        outcome = await connect(path, connection.signal, handlers);
        if (outcome === 'ended') delay = 500;
      } catch (error) {
        outcome = connection.signal.aborted ? 'hidden' : 'dropped';
        if (outcome === 'dropped') onError(new ApiError(0, `stream dropped: ${error.message}; reconnecting`));
      } finally {
        control.signal.removeEventListener('abort', close);
        document.removeEventListener('visibilitychange', close);
      }
      if (control.signal.aborted || outcome === 'refused' || (outcome === 'ended' && !again())) return;
      if (outcome === 'hidden') continue;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 15000);
    }
  };
  run();
  return () => control.abort();
}
