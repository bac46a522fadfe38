// The workers view: each worker's state, labels, slots used, running tasks and last contact,
// pushed (/api/v1/workers/events); drain, cordon and uncordon for a token with the admin scope.
import { html, useEffect, useState } from '/vendor/htm/preact/standalone.module.js';
import { apiPath, request, watch } from './api.js';
import { jobHref, logHref } from './router.js';
import { formatAgo, formatTime, num } from './util.js';

export function workerState(w) {
  if (!w.connected) return 'disconnected';
  if (w.stopping) return 'stopping';
  if (w.unresponsive) return 'unresponsive';
  if (w.admin_state === 'WORKER_CORDONED') return 'cordoned';
  if (w.admin_state === 'WORKER_DRAINING') return w.drained ? 'drained' : 'draining';
  return 'active';
}

// "<job>/<task>" -> a link to the task's log.
function Running({ entry }) {
  const slash = entry.indexOf('/');
  if (slash < 0) return html`<span>${entry}</span>`;
  const job = entry.slice(0, slash);
  const task = entry.slice(slash + 1);
  return html`<a href=${logHref(job, task)}>${task}</a> <a class="muted" href=${jobHref(job)}>(${job})</a>`;
}

function Actions({ worker, onError }) {
  const [busy, setBusy] = useState(false);
  const set = async (state) => {
    setBusy(true);
    onError('');
    try {
      await request(apiPath(`workers/${encodeURIComponent(worker.id)}/state`), { method: 'POST', body: { state } });
    } catch (e) {
      onError(`${worker.id}: ${e.message}`);
    } finally {
      setBusy(false);
    }
  };
  const admin = worker.admin_state || 'WORKER_ACTIVE';
  return html`<td class="actions">
    ${admin !== 'WORKER_DRAINING' ? html`<button type="button" class="drain" disabled=${busy} onClick=${() => set('WORKER_DRAINING')}>drain</button>` : null}
    ${admin !== 'WORKER_CORDONED' ? html`<button type="button" class="cordon" disabled=${busy} onClick=${() => set('WORKER_CORDONED')}>cordon</button>` : null}
    ${admin !== 'WORKER_ACTIVE' ? html`<button type="button" class="uncordon" disabled=${busy} onClick=${() => set('WORKER_ACTIVE')}>uncordon</button>` : null}
  </td>`;
}

function WorkerRow({ worker, admin, now, onError }) {
  const state = workerState(worker);
  return html`<tr class="worker" data-worker=${worker.id}>
    <td>${worker.id}<div class="muted">${worker.hostname} ${worker.version}</div></td>
    <td><span class=${`badge worker-${state}`}>${state}</span></td>
    <td>${(worker.labels || []).map((l) => html`<span key=${l} class="label">${l}</span> `)}</td>
    <td class="num">${worker.busy}/${worker.slots}</td>
    <td>${(worker.running || []).map((r) => html`<div key=${r}><${Running} entry=${r} /></div>`)}</td>
    <td class="seen" title=${formatTime(worker.last_seen_ms)}>${worker.connected ? formatAgo(num(worker.last_seen_ms), now) : formatTime(worker.last_seen_ms)}</td>
    ${admin ? html`<${Actions} worker=${worker} onError=${onError} />` : null}
  </tr>`;
}

export function WorkersView({ session }) {
  const [workers, setWorkers] = useState(null);
  const [error, setError] = useState(null);
  const [actionError, setActionError] = useState('');
  const [now, setNow] = useState(Date.now());
  const admin = !session.auth || (session.scopes || []).includes('admin');
  useEffect(() => watch(apiPath('workers/events'), {
    onMessage: (m) => { setWorkers(m.workers || []); setNow(Date.now()); },
    onError: setError,
  }), []);
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 5000);  // "12 s ago" ages on the page, no request
    return () => clearInterval(timer);
  }, []);
  return html`<section class="workers">
    <h1>Workers</h1>
    ${error ? html`<p class="error">${error.message}</p>` : null}
    ${actionError ? html`<p class="error action-error">${actionError}</p>` : null}
    ${workers === null ? html`<p class="loading">Loading…</p>` : workers.length === 0 ? html`<p>No workers.</p>` : html`
    <table class="list">
      <thead><tr><th>worker</th><th>state</th><th>labels</th><th>slots used</th><th>running</th><th>last seen</th>
        ${admin ? html`<th>admin</th>` : null}</tr></thead>
      <tbody>${workers.map((w) => html`<${WorkerRow} key=${w.id} worker=${w} admin=${admin} now=${now} onError=${setActionError} />`)}</tbody>
    </table>`}
  </section>`;
}
