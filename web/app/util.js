// Small formatting rules shared by the views: int64 strings, times, durations, bytes, states.

// int64 fields arrive as strings; absent or "0" is 0.
export const num = (v) => (v === undefined || v === null || v === '' ? 0 : Number(v));

export function formatDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} m`;
}

export function formatBytes(n) {
  n = num(n);
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
  return `${n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`;
}

export function formatTime(ms) {
  ms = num(ms);
  if (!ms) return '';
  const d = new Date(ms);
  const now = new Date();
  const pad = (x) => String(x).padStart(2, '0');
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (d.toDateString() === now.toDateString()) return time;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

// "12 s ago", from a millisecond time.
export function formatAgo(ms, now = Date.now()) {
  ms = num(ms);
  if (!ms) return 'never';
  if (now - ms < 2000) return 'just now';
  return `${formatDuration(now - ms)} ago`;
}

// "TASK_RUNNING" -> "running"; "JOB_FAILED" -> "failed".
// Memoized: the page asks for the names of a few states thousands of times per update.
const stateNames = new Map();
export function stateName(s) {
  let name = stateNames.get(s);
  if (name === undefined) {
    name = String(s || '').replace(/^(TASK|JOB|WORKER)_/, '').toLowerCase();
    if (stateNames.size < 64) stateNames.set(s, name);
  }
  return name;
}

const FINAL = new Set(['succeeded', 'failed', 'cancelled', 'skipped']);
export const isFinal = (state) => FINAL.has(stateName(state));
export const isBad = (state) => ['failed', 'cancelled', 'skipped'].includes(stateName(state));

// Milliseconds between two protobuf JSON timestamps ("2026-12-04T13:00:00.123Z"); null if either is missing.
export function between(from, to) {
  if (!from || !to) return null;
  const a = Date.parse(from);
  const b = Date.parse(to);
  if (!Number.isFinite(a) || !Number.isFinite(b) || a <= 0 || b < a) return null;
  return b - a;
}

const timesCache = new WeakMap();  // task object -> its times (a changed task is a new object)

// The phases of a task's run: queued (until the worker started), fetch, run and upload.
export function taskTimes(task) {
  let times = timesCache.get(task);
  if (!times) {
    times = computeTimes(task);
    timesCache.set(task, times);
  }
  return times;
}

function computeTimes(task) {
  const meta = (task.result && task.result.execution_metadata) || {};
  const queued = num(task.queued_at_ms);
  const started = num(task.started_at_ms);
  const run = between(meta.execution_start_timestamp, meta.execution_completed_timestamp);
  return {
    queued: queued && started >= queued ? started - queued : null,
    fetch: between(meta.input_fetch_start_timestamp, meta.input_fetch_completed_timestamp),
    run: num(task.run_ms) || run,
    upload: between(meta.output_upload_start_timestamp, meta.output_upload_completed_timestamp),
    total: started && num(task.finished_at_ms) ? num(task.finished_at_ms) - started : null,
  };
}

export function timesTitle(times) {
  const parts = [];
  for (const key of ['queued', 'fetch', 'run', 'upload']) {
    if (times[key] !== null && times[key] !== undefined) parts.push(`${key} ${formatDuration(times[key])}`);
  }
  return parts.join(' · ');
}

// Calls fn at most once per animation frame (or every 100 ms in a hidden tab, where frames stop),
// and at least gap() milliseconds after its last call: a big job's updates come in fewer, larger batches.
export function frameBatcher(fn, gap = () => 0) {
  let pending = false;
  let last = 0;
  return () => {
    if (pending) return;
    pending = true;
    let done = false;
    const run = () => {
      if (done) return;
      done = true;
      pending = false;
      last = performance.now();
      fn();
    };
    const schedule = () => {
      requestAnimationFrame(run);
      setTimeout(run, 100);
    };
    const wait = last + gap() - performance.now();
    if (wait > 0) setTimeout(schedule, wait); else schedule();
  };
}
