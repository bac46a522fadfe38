// A job as its pushed stream tells it (/api/v1/jobs/{id}/events): the first message is the whole
// job, later ones the job without tasks plus the tasks that changed, merged by id. Everything the
// views derive from the tasks is kept up to date by the merge, in proportion to what changed, so
// an update of a 1,000-task job costs the page its changed tasks, not a pass over all of them:
// - rows of the matrix (one per cell) are new arrays only when one of their tasks changed, so
//   unchanged rows skip rendering;
// - the tasks in job order (`list`) are a new array after each merge, the same objects otherwise;
// - the count of tasks in each state, and the failed tasks, follow each change;
// - per step, a version that moves when one of its tasks finishes (the per-step times table).
// `layoutVersion` moves when the whole job was laid out again (a new connection, new tasks).
import { isFinal, stateName } from './util.js';

export class JobModel {
  constructor() {
    this.job = null;
    this.tasks = new Map();   // id -> task
    this.cells = [];          // cell names, in task order
    this.steps = [];          // step ids, in task order
    this.rows = new Map();    // cell -> [task or undefined per step]
    this.list = [];           // tasks in job order
    this.position = new Map(); // id -> index in list
    this.counts = new Map();  // state name -> tasks in it
    this.failed = new Set();  // ids of failed tasks
    this.stepVersion = new Map(); // step -> moves when one of its tasks finishes or is run again
  }

  // A new connection sends the whole job again: it replaces what we have when it comes (until
  // then the page keeps showing the old state).
  reset() {
    this.fresh = true;
  }

  // Merges messages; returns true if the layout (cells or steps) changed.
  merge(messages) {
    const dirty = new Set();
    const changed = new Map();  // id -> the task it replaced (undefined if new)
    let added = false;
    for (const m of messages) {
      if (this.fresh) {
        this.fresh = false;
        this.tasks = new Map();
        changed.clear();
        added = true;
      }
      const { tasks, ...job } = m;
      this.job = { ...(this.job || {}), ...job };
      for (const t of tasks || []) {
        const old = this.tasks.get(t.id);
        if (!old) added = true;
        if (!changed.has(t.id)) changed.set(t.id, old);
        this.tasks.set(t.id, t);
        dirty.add(t.cell);
      }
    }
    if (added) {
      this.layout();
      return true;
    }
    this.list = this.list.slice();
    for (const [id, old] of changed) {
      const t = this.tasks.get(id);
      this.list[this.position.get(id)] = t;
      this.count(old, -1);
      this.count(t, 1);
    }
    for (const cell of dirty) this.buildRow(cell);
    return false;
  }

  count(task, delta) {
    if (!task) return;
    const state = stateName(task.state);
    this.counts.set(state, (this.counts.get(state) || 0) + delta);
    if (state === 'failed') {
      if (delta > 0) this.failed.add(task.id); else this.failed.delete(task.id);
    }
    if (isFinal(task.state)) this.stepVersion.set(task.step, (this.stepVersion.get(task.step) || 0) + 1);
  }

  layout() {
    this.list = [...this.tasks.values()].sort((a, b) => (a.index || 0) - (b.index || 0));
    this.position = new Map(this.list.map((t, i) => [t.id, i]));
    this.counts = new Map();
    this.failed = new Set();
    this.stepVersion = new Map();
    this.layoutVersion = (this.layoutVersion || 0) + 1;
    const cells = new Set();
    const steps = new Set();
    for (const t of this.list) {
      cells.add(t.cell);
      steps.add(t.step);
      this.count(t, 1);
    }
    this.cells = [...cells];
    this.steps = [...steps];
    this.stepIndex = new Map(this.steps.map((s, i) => [s, i]));
    this.byCell = new Map(this.cells.map((c) => [c, []]));
    for (const t of this.list) this.byCell.get(t.cell).push(t.id);
    this.rows = new Map();
    for (const cell of this.cells) this.buildRow(cell);
  }

  buildRow(cell) {
    const row = new Array(this.steps.length);
    for (const id of this.byCell.get(cell) || []) {
      const t = this.tasks.get(id);
      row[this.stepIndex.get(t.step)] = t;
    }
    this.rows.set(cell, row);
  }

  // Tasks in job order (the same array until the next merge).
  ordered() {
    return this.list;
  }

  // The failed tasks, first failed first.
  failedTasks() {
    return [...this.failed].map((id) => this.tasks.get(id));
  }
}
