// The trends view: for a pipeline and a branch, each budgeted or ELF output's sizes (file, text,
// data, bss, rom, ram) and each step's run time across the last finished jobs, with the budgets.
import { html, useEffect, useMemo, useState } from '/vendor/htm/preact/standalone.module.js';
import { apiPath, request, watch } from './api.js';
import { href, replaceHash } from './router.js';
import { Chart } from './chart.js';
import { formatDuration, num } from './util.js';

const MEASURES = ['file', 'text', 'data', 'bss', 'rom', 'ram'];

function measure(size, m) {
  if (m === 'rom') return size.elf ? num(size.text) + num(size.data) : null;
  if (m === 'ram') return size.elf ? num(size.data) + num(size.bss) : null;
  if (m !== 'file' && !size.elf) return null;
  return num(size[m]);
}

// One chart per (task, path): the measures that have a value or a budget.
function sizeCharts(trend) {
  const keys = new Map();
  const key = (task, path) => `${task}\n${path}`;
  for (const job of trend.jobs) {
    for (const t of job.tasks || []) for (const s of t.sizes || []) keys.set(key(t.id, s.path), { task: t.id, path: s.path });
  }
  for (const b of trend.budgets || []) keys.set(key(b.task_id, b.path), { task: b.task_id, path: b.path });
  return [...keys.values()].map(({ task, path }) => {
    const budget = (trend.budgets || []).find((b) => b.task_id === task && b.path === path) || {};
    const sizes = trend.jobs.map((job) => {
      const t = (job.tasks || []).find((x) => x.id === task);
      return t && (t.sizes || []).find((s) => s.path === path);
    });
    const series = MEASURES.map((m) => ({
      label: m,
      values: sizes.map((s) => (s ? measure(s, m) : null)),
      budget: num(budget[m]) || 0,
    })).filter((s) => s.budget || s.values.some((v) => v !== null && (v > 0 || s.label === 'file')));
    return { title: `${task}: ${path}`, series };
  });
}

// Each step's run time: the slowest of its cells in each job (cached runs count as none).
function durationSeries(trend) {
  const steps = [];
  for (const job of trend.jobs) for (const t of job.tasks || []) if (!steps.includes(t.step)) steps.push(t.step);
  return steps.map((step) => ({
    label: step,
    values: trend.jobs.map((job) => {
      const runs = (job.tasks || []).filter((t) => t.step === step && !t.cached && num(t.run_ms) > 0).map((t) => num(t.run_ms));
      return runs.length ? Math.max(...runs) : null;
    }),
  }));
}

function Picker({ pipeline, branch, limit }) {
  const [draft, setDraft] = useState({ pipeline, branch, limit });
  useEffect(() => setDraft({ pipeline, branch, limit }), [pipeline, branch, limit]);
  const field = (k) => html`<label>${k}
    <input name=${k} list=${k === 'pipeline' ? 'pipelines' : null} value=${draft[k]}
      onInput=${(e) => setDraft({ ...draft, [k]: e.target.value })} /></label>`;
  return html`<form class="filters" onSubmit=${(e) => { e.preventDefault(); replaceHash(href(['trends'], draft)); }}>
    ${field('pipeline')}${field('branch')}${field('limit')}<button type="submit">Show</button>
  </form>`;
}

export function TrendsView({ params }) {
  const pipeline = params.get('pipeline') || '';
  const branch = params.get('branch') || '';
  const limit = params.get('limit') || '50';
  const [trend, setTrend] = useState(null);
  const [error, setError] = useState('');
  const [known, setKnown] = useState([]);
  useEffect(() => watch(apiPath('jobs/events', { limit: 200 }), {
    onMessage: (m) => setKnown([...new Set((m.jobs || []).map((j) => j.name))]),
  }), []);
  useEffect(() => {
    setTrend(null);
    setError('');
    if (!pipeline) return;
    request(apiPath('trends', { pipeline, branch, limit })).then(setTrend).catch((e) => setError(e.message));
  }, [pipeline, branch, limit]);
  const charts = useMemo(() => (trend ? sizeCharts(trend) : []), [trend]);
  const durations = useMemo(() => (trend ? durationSeries(trend) : []), [trend]);
  return html`<section class="trends">
    <h1>Trends</h1>
    <${Picker} pipeline=${pipeline} branch=${branch} limit=${limit} />
    <datalist id="pipelines">${known.map((n) => html`<option key=${n} value=${n} />`)}</datalist>
    ${error ? html`<p class="error">${error}</p>` : null}
    ${!pipeline ? html`<p>Pick a pipeline (and a branch) to see its sizes and step times across jobs.</p>` : null}
    ${trend && !trend.jobs.length ? html`<p>No finished jobs of ${pipeline} on ${branch || 'any branch'}.</p>` : null}
    ${trend && trend.jobs.length ? html`
      <h2>Sizes</h2>
      ${charts.length ? charts.map((c) => html`<${Chart} key=${c.title} title=${c.title} jobs=${trend.jobs}
        series=${c.series} format=${(v) => `${Math.round(v)} B`} />`) : html`<p>No measured outputs.</p>`}
      <h2>Step times</h2>
      <${Chart} title="run time (slowest cell)" jobs=${trend.jobs} series=${durations} format=${formatDuration} />` : null}
  </section>`;
}
