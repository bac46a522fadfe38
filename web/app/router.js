// Hash routing: the view and its parameters live in the address's fragment, so a reload or a
// shared link opens the same view. "#/jobs/ID/log?task=T" -> {view: 'log', id: 'ID', params}.
import { useEffect, useState } from '/vendor/htm/preact/standalone.module.js';

export function parseHash(hash) {
  const text = (hash || '').replace(/^#/, '') || '/jobs';
  const q = text.indexOf('?');
  const path = q >= 0 ? text.slice(0, q) : text;
  const params = new URLSearchParams(q >= 0 ? text.slice(q + 1) : '');
  const parts = path.split('/').filter(Boolean).map((p) => {
    try { return decodeURIComponent(p); } catch { return p; }
  });
  if (parts[0] === 'jobs' && parts.length === 3 && parts[2] === 'log') return { view: 'log', id: parts[1], params };
  if (parts[0] === 'jobs' && parts.length === 2) return { view: 'job', id: parts[1], params };
  if (['jobs', 'trends', 'workers', 'queue'].includes(parts[0]) && parts.length === 1) {
    return { view: parts[0], params };
  }
  return { view: 'missing', params, path };
}

// "#/jobs/ID/log?task=T": every part from the server is encoded, so it stays inside the fragment.
export function href(parts, params = {}) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') query.set(k, v);
  const q = query.toString();
  return `#/${parts.map((p) => encodeURIComponent(p)).join('/')}${q ? `?${q}` : ''}`;
}

export const jobHref = (id) => href(['jobs', id]);
export const logHref = (id, task) => href(['jobs', id, 'log'], { task });

// Changes the fragment without adding a history entry (filters typed into a form).
export function replaceHash(target) {
  if (location.hash !== target) history.replaceState(null, '', target);
  window.dispatchEvent(new HashChangeEvent('hashchange'));
}

export function useRoute() {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const update = () => setRoute(parseHash(location.hash));
    window.addEventListener('hashchange', update);
    return () => window.removeEventListener('hashchange', update);
  }, []);
  return route;
}
