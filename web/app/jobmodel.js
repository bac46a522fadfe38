// A job as its pushed stream tells it (/api/v1/jobs/{id}/events): the first message is the whole
// job, later ones the job without tasks plus the tasks that changed, merged by id. Rows of the
// matrix (one per cell) are new arrays only when one of their tasks changed, so unchanged rows
// skip rendering.

export class JobModel {
  constructor() {
    this.job = null;
    this.tasks = new Map();  // id -> task
    this.cells = [];         // cell names, in task order
    this.steps = [];         // step ids, in task order
    this.rows = new Map();   // cell -> [task or undefined per step]
  }

  // A new connection sends the whole job again: it replaces what we have when it comes (until
  // then the page keeps showing the old state).
  reset() {
    this.fresh = true;
  }

  // Merges messages; returns true if the layout (cells or steps) changed.
  merge(messages) {
    const dirty = new Set();
    let added = false;
    for (const m of messages) {
      if (this.fresh) {
        this.fresh = false;
        this.tasks = new Map();
        added = true;
      }
      const { tasks, ...job } = m;
      this.job = { ...(this.job || {}), ...job };
      for (const t of tasks || []) {
        if (!this.tasks.has(t.id)) added = true;
        this.tasks.set(t.id, t);
        dirty.add(t.cell);
      }
    }
    if (added) this.layout();
    else for (const cell of dirty) this.buildRow(cell);
    return added;
  }

  layout() {
    const ordered = [...this.tasks.values()].sort((a, b) => (a.index || 0) - (b.index || 0));
    const cells = new Set();
    const steps = new Set();
    for (const t of ordered) { cells.add(t.cell); steps.add(t.step); }
    this.cells = [...cells];
    this.steps = [...steps];
    this.byCell = new Map(this.cells.map((c) => [c, []]));
    for (const t of ordered) this.byCell.get(t.cell).push(t.id);
    this.rows = new Map();
    for (const cell of this.cells) this.buildRow(cell);
  }

  buildRow(cell) {
    const row = new Array(this.steps.length);
    for (const id of this.byCell.get(cell) || []) {
      const t = this.tasks.get(id);
      row[this.steps.indexOf(t.step)] = t;
    }
    this.rows.set(cell, row);
  }

  // Tasks in job order.
  ordered() {
    return [...this.tasks.values()].sort((a, b) => (a.index || 0) - (b.index || 0));
  }
}
