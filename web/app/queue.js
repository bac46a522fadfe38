// The queue and the cache: queued tasks grouped by the worker labels they require, and the action
// cache's hit rate and the store's size. Refreshed when the pushed jobs or workers change (no polling).
import { html, useEffect, useState } from '/vendor/htm/preact/standalone.module.js';
import { apiPath, request, watch } from './api.js';
import { formatAgo, formatBytes, num } from './util.js';

function QueueTable({ groups, now }) {
  if (!groups.length) return html`<p class="empty-queue">Nothing is queued.</p>`;
  return html`<table class="list queue-groups">
    <thead><tr><th>requires</th><th>queued tasks</th><th>oldest</th></tr></thead>
    <tbody>${groups.map((g) => html`<tr key=${g.requires}>
      <td>${g.requires ? g.requires.split(',').map((l) => html`<span key=${l} class="label">${l}</span> `) : html`<span class="muted">any worker</span>`}</td>
      <td class="num">${g.tasks}</td><td>${formatAgo(num(g.oldest_queued_at_ms), now)}</td></tr>`)}</tbody>
  </table>`;
}

function CacheStats({ stats }) {
  const hits = num(stats.ac_hits);
  const misses = num(stats.ac_misses);
  const rate = hits + misses ? `${((100 * hits) / (hits + misses)).toFixed(1)} %` : 'no lookups yet';
  const rows = [
    ['action-cache hit rate', rate, `${hits} hits, ${misses} misses`],
    ['store size', formatBytes(stats.bytes), num(stats.budget_bytes) ? `budget ${formatBytes(stats.budget_bytes)}` : 'no budget'],
    ['blobs', String(num(stats.blobs)), ''],
    ['action results', String(num(stats.action_results)), ''],
    ['evicted', `${num(stats.evicted_blobs)} blobs`, formatBytes(stats.evicted_bytes)],
    ['through the coordinator', `${formatBytes(stats.cas_read_bytes)} read`, `${formatBytes(stats.cas_written_bytes)} written`],
    ['direct (bucket)', `${formatBytes(stats.direct_read_bytes)} read`, `${formatBytes(stats.direct_written_bytes)} written`],
  ];
  return html`<table class="list cache-stats"><tbody>${rows.map(([k, v, note]) => html`<tr key=${k}>
    <th>${k}</th><td class="num">${v}</td><td class="muted">${note}</td></tr>`)}</tbody></table>`;
}

export function QueueView() {
  const [groups, setGroups] = useState(null);
  const [stats, setStats] = useState(null);
  const [error, setError] = useState('');
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    let inFlight = false;
    let again = false;
    const refresh = async () => {
      if (inFlight) { again = true; return; }
      inFlight = true;
      try {
        const [q, c] = await Promise.all([request(apiPath('queue')), request(apiPath('cache'))]);
        setGroups(q.groups || []);
        setStats(c);
        setNow(Date.now());
        setError('');
      } catch (e) {
        setError(e.message);
      } finally {
        inFlight = false;
        if (again) { again = false; refresh(); }
      }
    };
    // Jobs change when tasks end, workers when tasks start: either may change the queue.
    const stops = [watch(apiPath('jobs/events', { limit: 50 }), { onMessage: refresh }),
      watch(apiPath('workers/events'), { onMessage: refresh })];
    return () => stops.forEach((stop) => stop());
  }, []);
  return html`<section class="queue">
    <h1>Queue</h1>
    ${error ? html`<p class="error">${error}</p>` : null}
    ${groups === null ? html`<p class="loading">Loading…</p>` : html`<${QueueTable} groups=${groups} now=${now} />`}
    <h1>Cache</h1>
    ${stats === null ? html`<p class="loading">Loading…</p>` : html`<${CacheStats} stats=${stats} />`}
  </section>`;
}
