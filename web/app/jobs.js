// The jobs view: recent jobs, filtered by state, pipeline, branch and submitter; the filters live
// in the address (#/jobs?state=failed&branch=main) and the list is pushed (/api/v1/jobs/events).
import { html, useEffect, useState } from '/vendor/htm/preact/standalone.module.js';
import { apiPath, watch } from './api.js';
import { href, jobHref, replaceHash } from './router.js';
import { formatDuration, formatTime, num, stateName } from './util.js';

const FILTERS = ['state', 'pipeline', 'branch', 'submitter'];
const STATES = ['', 'queued', 'running', 'succeeded', 'failed', 'cancelled'];

function filtersOf(params) {
  const f = {};
  for (const k of FILTERS) f[k] = params.get(k) || '';
  return f;
}

function FilterForm({ filters }) {
  const [draft, setDraft] = useState(filters);
  useEffect(() => setDraft(filters), [JSON.stringify(filters)]);
  const apply = (next) => replaceHash(href(['jobs'], next));
  const field = (k) => html`<label>${k}
    <input name=${k} value=${draft[k]} onInput=${(e) => setDraft({ ...draft, [k]: e.target.value })} /></label>`;
  return html`<form class="filters" onSubmit=${(e) => { e.preventDefault(); apply(draft); }}>
    <label>state
      <select name="state" value=${draft.state} onChange=${(e) => apply({ ...draft, state: e.target.value })}>
        ${STATES.map((s) => html`<option key=${s} value=${s}>${s || 'any'}</option>`)}
      </select></label>
    ${field('pipeline')}${field('branch')}${field('submitter')}
    <button type="submit">Filter</button>
    <a class="clear" href="#/jobs">clear</a>
  </form>`;
}

function JobRow({ job }) {
  const labels = job.labels || {};
  const created = num(job.created_at_ms);
  const finished = num(job.finished_at_ms);
  const state = stateName(job.state);
  return html`<tr class=${`job state-${state}`}>
    <td><a class="job-link" href=${jobHref(job.id)}>${job.id}</a></td>
    <td>${job.name}</td>
    <td><span class=${`badge state-${state}`}>${state}</span></td>
    <td>${labels.branch || ''}</td>
    <td>${labels.user || ''}</td>
    <td class="num">${job.tasks_done}/${job.task_count}</td>
    <td>${formatTime(created)}</td>
    <td class="num">${finished ? formatDuration(finished - created) : ''}</td>
  </tr>`;
}

export function JobsView({ params }) {
  const filters = filtersOf(params);
  const key = JSON.stringify(filters);
  const [jobs, setJobs] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    setJobs(null);
    return watch(apiPath('jobs/events', filters), {
      onMessage: (m) => setJobs(m.jobs || []),
      onError: setError,
    });
  }, [key]);
  return html`<section class="jobs">
    <h1>Jobs</h1>
    <${FilterForm} filters=${filters} />
    ${error ? html`<p class="error">${error.message}</p>` : null}
    ${jobs === null ? html`<p class="loading">Loading…</p>` : jobs.length === 0 ? html`<p>No jobs match.</p>` : html`
    <table class="list">
      <thead><tr><th>job</th><th>pipeline</th><th>state</th><th>branch</th><th>submitter</th>
        <th>tasks</th><th>created</th><th>took</th></tr></thead>
      <tbody>${jobs.map((j) => html`<${JobRow} key=${j.id} job=${j} />`)}</tbody>
    </table>`}
  </section>`;
}
