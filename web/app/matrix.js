// The job's matrix: a row per cell, a column per step; each square shows the task's state, time,
// and its cached and flaky marks, and links to its log. Rows re-render only when their tasks change,
// and only the rows in view are in the page (a 1,000-task job would make every update lay out
// a thousand squares).
import { Component, html, useEffect, useLayoutEffect, useRef, useState } from '/vendor/htm/preact/standalone.module.js';
import { logHref } from './router.js';
import { formatDuration, num, stateName, taskTimes, timesTitle } from './util.js';

function taskTime(task) {
  const started = num(task.started_at_ms);
  const finished = num(task.finished_at_ms);
  if (started && finished) return formatDuration(finished - started);
  return '';
}

function Square({ jobId, task }) {
  if (!task) return html`<td class="square none"></td>`;
  const state = stateName(task.state);
  const times = taskTimes(task);
  const title = [task.id, state, timesTitle(times), task.message].filter(Boolean).join('\n');
  return html`<td class=${`square state-${state}`}>
    <a href=${logHref(jobId, task.id)} title=${title} data-task=${task.id}>
      <span class="state">${state}</span>
      <span class="time">${taskTime(task)}</span>
      ${task.cached ? html`<span class="mark cached" title="from the action cache">cached</span>` : null}
      ${task.flaky ? html`<span class="mark flaky" title=${`passed after ${task.failed_runs} failed runs`}>flaky</span>` : null}
    </a>
  </td>`;
}

// One cell's row; skips rendering unless its array of tasks was replaced.
class Row extends Component {
  shouldComponentUpdate(next) { return next.row !== this.props.row || next.jobId !== this.props.jobId; }
  render({ jobId, cell, row }) {
    return html`<tr class="row">
      <th class="cell" scope="row">${cell || '(no matrix)'}</th>
      ${row.map((task, i) => html`<${Square} key=${i} jobId=${jobId} task=${task} />`)}
    </tr>`;
  }
}

const OVERSCAN = 15;

// The rows in view of a scrolled box. Measured when it scrolls or resizes and once for the height
// of a row, never after each update (reading a size there would lay out the page every time).
function useWindow(box, count) {
  const [view, setView] = useState({ top: 0, height: 800, row: 25 });
  const measured = useRef(false);
  const measure = () => {
    const el = box.current;
    if (!el) return;
    const tr = el.querySelector('tbody tr.row');
    const row = tr ? tr.getBoundingClientRect().height || 25 : 25;
    setView({ top: el.scrollTop, height: el.clientHeight, row });
  };
  useLayoutEffect(() => {
    if (measured.current || !count) return;
    measured.current = true;
    measure();
  }, [count]);
  useEffect(() => {
    const observer = new ResizeObserver(measure);
    observer.observe(box.current);
    return () => observer.disconnect();
  }, []);
  const first = Math.max(0, Math.floor(view.top / view.row) - OVERSCAN);
  const last = Math.min(count, Math.ceil((view.top + view.height) / view.row) + OVERSCAN);
  return { first, last, row: view.row, onScroll: measure };
}

export function Matrix({ jobId, model }) {
  const box = useRef(null);
  const cells = model.cells;
  const { first, last, row, onScroll } = useWindow(box, cells.length);
  const pad = (n, key) => (n > 0 ? html`<tr key=${key} class="pad" style=${{ height: `${n * row}px` }}><td colspan=${model.steps.length + 1}></td></tr>` : null);
  const tall = cells.length * row > 1000;  // more than the box shows (100vh - 140px) on most screens
  return html`<div class=${tall ? 'matrix-wrap tall' : 'matrix-wrap'} ref=${box} onScroll=${onScroll} data-tasks=${model.tasks.size} data-cells=${cells.length}>
    <table class="matrix">
      <thead><tr><th>cell</th>${model.steps.map((s) => html`<th key=${s}>${s}</th>`)}</tr></thead>
      <tbody>
        ${pad(first, 'top')}
        ${cells.slice(first, last).map((cell) => html`<${Row} key=${cell} jobId=${jobId} cell=${cell} row=${model.rows.get(cell)} />`)}
        ${pad(cells.length - last, 'bottom')}
      </tbody>
    </table>
  </div>`;
}
