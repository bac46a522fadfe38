// A line chart of values across jobs (uPlot), with dashed budget lines; clicking a point opens
// its job. The same numbers are in a table below the chart, for reading and for screen readers.
import { html, useEffect, useRef } from '/vendor/htm/preact/standalone.module.js';
import uPlot from '/vendor/uplot/dist/uPlot.esm.js';
import { jobHref } from './router.js';

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf',
  '#7f7f7f', '#bcbd22'];

// series: [{label, values: [number|null per job], budget?: number}]; format: value -> text.
export function Chart({ title, jobs, series, format }) {
  const box = useRef(null);
  useEffect(() => {
    const el = box.current;
    const xs = jobs.map((_, i) => i + 1);
    const data = [xs];
    const opts = {
      width: Math.max(320, el.clientWidth || 800),
      height: 240,
      cursor: { points: { size: 8 } },
      scales: { x: { time: false } },
      axes: [
        { incrs: [1, 2, 5, 10, 20, 50, 100], values: (u, ticks) => ticks.map((t) => (jobs[t - 1] ? jobs[t - 1].id.slice(0, 8) : '')) },
        { values: (u, ticks) => ticks.map(format), size: 80 },
      ],
      series: [{ label: 'job', value: (u, v) => (v && jobs[v - 1] ? jobs[v - 1].id : '') }],
    };
    series.forEach((s, i) => {
      const colour = COLOURS[i % COLOURS.length];
      data.push(s.values);
      opts.series.push({ label: s.label, stroke: colour, width: 2, points: { show: true, size: 7 }, value: (u, v) => (v === null ? '' : format(v)) });
      if (s.budget) {
        data.push(xs.map(() => s.budget));
        opts.series.push({ label: `${s.label} budget`, stroke: colour, dash: [6, 4], width: 1, points: { show: false },
          value: () => format(s.budget) });
      }
    });
    const plot = new uPlot(opts, data, el);
    const open = () => {
      const idx = plot.cursor.idx;
      if (idx !== null && idx !== undefined && jobs[idx]) location.hash = jobHref(jobs[idx].id);
    };
    plot.over.addEventListener('click', open);
    el.plot = plot;  // for tests and the curious: the chart's data
    return () => plot.destroy();
  }, [jobs, series]);

  return html`<figure class="chart">
    <figcaption>${title}</figcaption>
    <div class="plot" ref=${box}></div>
    <table class="chart-data">
      <thead><tr><th>job</th>${series.map((s) => html`<th key=${s.label}>${s.label}</th>`)}</tr></thead>
      <tbody>
        ${jobs.map((job, j) => html`<tr key=${job.id}><td><a href=${jobHref(job.id)}>${job.id}</a></td>
          ${series.map((s) => html`<td key=${s.label} class="num">${s.values[j] === null ? '' : format(s.values[j])}</td>`)}</tr>`)}
        ${series.some((s) => s.budget) ? html`<tr class="budget"><th>budget</th>
          ${series.map((s) => html`<td key=${s.label} class="num">${s.budget ? format(s.budget) : ''}</td>`)}</tr>` : null}
      </tbody>
    </table>
  </figure>`;
}
