// The job view: the failure first, the live matrix, per-step times (queued, fetch, run, upload),
// the tasks' artifacts (artifacts.js), and "rerun failed" (a new job of the failed, cancelled and
// skipped cells).
import { html, useEffect, useMemo, useRef, useState } from '/vendor/htm/preact/standalone.module.js';
import { apiPath, request, watch } from './api.js';
import { jobHref, logHref } from './router.js';
import { Artifacts } from './artifacts.js';
import { JobModel } from './jobmodel.js';
import { Matrix } from './matrix.js';
import { formatDuration, formatTime, frameBatcher, isBad, isFinal, num, stateName, taskTimes } from './util.js';

// Watches the job; returns [model, version, error]. Messages are merged once per frame.
function useJob(id) {
  const model = useMemo(() => new JobModel(), [id]);
  const [version, setVersion] = useState(0);
  const [error, setError] = useState(null);
  useEffect(() => {
    let pending = [];
    const flush = frameBatcher(() => {
      model.merge(pending);
      pending = [];
      setVersion((v) => v + 1);
    }, () => (model.tasks.size > 200 ? 250 : 0));
    return watch(apiPath(`jobs/${encodeURIComponent(id)}/events`), {
      onOpen: () => { model.reset(); pending = []; },  // the new connection's first message is the whole job
      onMessage: (m) => { pending.push(m); flush(); },
      onError: setError,
      again: () => !(model.job && isFinal(model.job.state)),
    });
  }, [id]);
  return [model, version, error];
}

function FailureFirst({ jobId, failed }) {
  failed = failed.slice().sort((a, b) => num(a.finished_at_ms) - num(b.finished_at_ms));
  if (!failed.length) return null;
  const first = failed[0];
  return html`<section class="failure">
    <h2>Failed: <a class="failure-link" href=${logHref(jobId, first.id)}>${first.id}</a></h2>
    <p class="message">${first.message || `exit code ${first.exit_code}`}</p>
    ${failed.length > 1 ? html`<p>Also failed: ${failed.slice(1, 20).map((t) => html`
      <a key=${t.id} class="also-failed" href=${logHref(jobId, t.id)}>${t.id}</a> `)}
      ${failed.length > 20 ? `and ${failed.length - 20} more` : ''}</p>` : null}
  </section>`;
}

function median(values) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const PHASES = ['queued', 'fetch', 'run', 'upload'];

// One step's row: the median and the largest of each phase over its finished tasks.
function stepRow(step, tasks) {
  const times = tasks.filter((t) => t.step === step && isFinal(t.state)).map(taskTimes);
  const cols = PHASES.map((p) => {
    const v = times.map((x) => x[p]).filter((x) => x !== null && x !== undefined);
    return v.length ? `${formatDuration(median(v))} / ${formatDuration(Math.max(...v))}` : '';
  });
  return { step, done: times.length, cols };
}

// Per step: the median and the largest of each phase over its finished tasks. A step's row is
// computed again only when one of its tasks finished (the model's step versions).
function StepTimes({ model, tasks }) {
  const cache = useRef(new Map());  // step -> { key, row }
  const rows = model.steps.map((step) => {
    const key = `${model.layoutVersion}:${model.stepVersion.get(step) || 0}`;
    let hit = cache.current.get(step);
    if (!hit || hit.key !== key) {
      hit = { key, row: stepRow(step, tasks) };
      cache.current.set(step, hit);
    }
    return hit.row;
  });
  return html`<table class="times">
    <caption>Per-step times: median / slowest of the finished tasks</caption>
    <thead><tr><th>step</th><th>done</th>${PHASES.map((p) => html`<th key=${p}>${p}</th>`)}</tr></thead>
    <tbody>${rows.map((r) => html`<tr key=${r.step}><th>${r.step}</th><td class="num">${r.done}</td>
      ${r.cols.map((c, i) => html`<td key=${i} class="num">${c}</td>`)}</tr>`)}</tbody>
  </table>`;
}

function Rerun({ job, counts, session }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const scopes = (session && session.scopes) || [];
  if (!isFinal(job.state) || ![...counts].some(([state, n]) => n > 0 && isBad(state))) return null;
  if (session && session.auth && !scopes.includes('submit')) return null;
  const rerun = async () => {
    setBusy(true);
    setError('');
    try {
      const next = await request(apiPath(`jobs/${encodeURIComponent(job.id)}/rerun-failed`), { method: 'POST', body: {} });
      location.hash = jobHref(next.id);
    } catch (e) {
      setError(e.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<span class="rerun"><button type="button" disabled=${busy} onClick=${rerun}>Rerun failed cells</button>
    ${error ? html`<span class="error">${error}</span>` : null}</span>`;
}

function JobHeader({ job, counts, session }) {
  const labels = Object.entries(job.labels || {});
  const created = num(job.created_at_ms);
  const finished = num(job.finished_at_ms);
  const state = stateName(job.state);
  return html`<header class="job-header">
    <h1><span class="job-name">${job.name}</span> <span class="job-id">${job.id}</span>
      <span class=${`badge state-${state}`} id="job-state">${state}</span></h1>
    <p>${job.tasks_done}/${job.task_count} tasks done · created ${formatTime(created)}
      ${finished ? ` · took ${formatDuration(finished - created)}` : ''}
      ${[...counts].filter(([, n]) => n > 0).map(([s, n]) => html` · <span key=${s} class=${`count state-${s}`}>${n} ${s}</span>`)}</p>
    ${labels.length ? html`<p class="labels">${labels.map(([k, v]) => html`<span key=${k} class="label">${k}=${v}</span> `)}</p>` : null}
    ${job.message ? html`<p class="message">${job.message}</p>` : null}
    <${Rerun} job=${job} counts=${counts} session=${session} />
  </header>`;
}

export function JobView({ id, session }) {
  const [model, version, error] = useJob(id);
  const tasks = useMemo(() => (model.job ? model.ordered() : []), [version]);
  if (!model.job) {
    return error ? html`<p class="error">${error.message}</p>` : html`<p class="loading">Loading job ${id}…</p>`;
  }
  return html`<section class="job">
    <${JobHeader} job=${model.job} counts=${model.counts} session=${session} />
    ${error ? html`<p class="error">${error.message}</p>` : null}
    <${FailureFirst} jobId=${id} failed=${model.failedTasks()} />
    <${Matrix} jobId=${id} model=${model} />
    <${StepTimes} model=${model} tasks=${tasks} />
    <${Artifacts} jobId=${id} tasks=${tasks} session=${session} />
  </section>`;
}
