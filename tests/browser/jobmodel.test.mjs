// The job view's model (web/app/jobmodel.js) on its own, in Node: what it keeps up to date as
// changes merge (counts per state, the failed tasks, the order, the matrix rows, the steps'
// versions) must equal what a pass over all the tasks gives, and only changed rows are new arrays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JobModel } from '../../web/app/jobmodel.js';

const STATES = ['TASK_QUEUED', 'TASK_RUNNING', 'TASK_SUCCEEDED', 'TASK_FAILED', 'TASK_CANCELLED', 'TASK_SKIPPED'];
const task = (cell, step, index, state = 'TASK_QUEUED') => ({ id: `${cell}/${step}`, cell, step, index, state });

function wholeJob(cells, steps) {
  const tasks = [];
  for (const c of cells) for (const s of steps) tasks.push(task(c, s, tasks.length));
  // Sent in another order than the job's: the model orders them by index.
  return { id: 'j', state: 'JOB_RUNNING', task_count: tasks.length, tasks: tasks.reverse() };
}

function recount(model) {
  const counts = {};
  for (const t of model.tasks.values()) {
    const s = t.state.replace('TASK_', '').toLowerCase();
    counts[s] = (counts[s] || 0) + 1;
  }
  return counts;
}
const countsOf = (model) => Object.fromEntries([...model.counts].filter(([, n]) => n > 0));

// A small deterministic generator, so a failure repeats.
function random(seed) {
  let x = seed;
  return () => { x = (x * 1103515245 + 12345) % 2147483648; return x / 2147483648; };
}

test('counts, failed tasks and order follow every merge as a recount would', () => {
  const model = new JobModel();
  model.merge([wholeJob(['1', '2', '3', '4'], ['build', 'test'])]);
  assert.deepEqual(model.ordered().map((t) => t.index), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(countsOf(model), { queued: 8 });
  const next = random(7);
  for (let round = 0; round < 200; round++) {
    const batch = [];
    for (let m = 1 + Math.floor(next() * 3); m > 0; m--) {
      const tasks = [];
      for (let k = Math.floor(next() * 3); k >= 0; k--) {
        const i = Math.floor(next() * 8);
        const old = model.ordered()[i];
        tasks.push({ ...old, state: STATES[Math.floor(next() * STATES.length)] });
      }
      batch.push({ id: 'j', tasks_done: round, tasks });
    }
    const before = model.ordered();
    assert.equal(model.merge(batch), false, 'no new task, no new layout');
    assert.notEqual(model.ordered(), before, 'a new array after a merge');
    assert.deepEqual(countsOf(model), recount(model), `round ${round}`);
    const failed = [...model.tasks.values()].filter((t) => t.state === 'TASK_FAILED').map((t) => t.id).sort();
    assert.deepEqual(model.failedTasks().map((t) => t.id).sort(), failed);
    assert.deepEqual(model.ordered().map((t) => t.index), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(model.ordered(), [...model.tasks.values()].sort((a, b) => a.index - b.index));
  }
  assert.equal(model.job.tasks_done, 199);
});

test('only the rows of cells whose tasks changed are new arrays, each task under its step', () => {
  const model = new JobModel();
  model.merge([wholeJob(['a', 'b', 'c'], ['build', 'test', 'size'])]);
  const rows = new Map(model.rows);
  assert.deepEqual(model.rows.get('b').map((t) => t.id), ['b/build', 'b/test', 'b/size']);
  model.merge([{ tasks: [{ ...model.tasks.get('b/test'), state: 'TASK_RUNNING' }] }]);
  assert.equal(model.rows.get('a'), rows.get('a'));
  assert.equal(model.rows.get('c'), rows.get('c'));
  assert.notEqual(model.rows.get('b'), rows.get('b'));
  assert.equal(model.rows.get('b')[1].state, 'TASK_RUNNING');
});

test("a step's version moves when one of its tasks finishes, and no other step's", () => {
  const model = new JobModel();
  model.merge([wholeJob(['a', 'b'], ['build', 'test'])]);
  const version = (s) => model.stepVersion.get(s) || 0;
  const [build, test0] = [version('build'), version('test')];
  model.merge([{ tasks: [{ ...model.tasks.get('a/build'), state: 'TASK_RUNNING' }] }]);
  assert.equal(version('build'), build, 'running is not finished');
  model.merge([{ tasks: [{ ...model.tasks.get('a/build'), state: 'TASK_SUCCEEDED' }] }]);
  assert.ok(version('build') > build);
  assert.equal(version('test'), test0);
});

test('after a reconnection the whole job replaces what was merged, with new tasks laid out', () => {
  const model = new JobModel();
  model.merge([wholeJob(['a', 'b'], ['build'])]);
  model.merge([{ tasks: [{ ...model.tasks.get('a/build'), state: 'TASK_FAILED' }] }]);
  assert.equal(model.failedTasks().length, 1);
  const layout = model.layoutVersion;
  model.reset();
  const again = wholeJob(['a', 'b', 'c'], ['build']);
  assert.equal(model.merge([again, { tasks: [{ ...again.tasks[0], state: 'TASK_SUCCEEDED' }] }]), true);
  assert.ok(model.layoutVersion > layout);
  assert.deepEqual(model.cells, ['a', 'b', 'c']);
  assert.deepEqual(countsOf(model), { queued: 2, succeeded: 1 });
  assert.deepEqual(model.failedTasks(), []);
});
