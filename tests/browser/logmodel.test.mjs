// The log view's line store (web/app/logmodel.js) on its own, in Node: tails that start mid-line,
// pushed chunks that split lines, overlaps after a reconnection, gaps, "load earlier", UTF-8 offsets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogModel, utf8Length } from '../../web/app/logmodel.js';

const texts = (m) => m.texts;

test('chunks that split lines are joined, and the open last line is continued', () => {
  const m = new LogModel();
  m.begin({ offset: 0, size: 0, start: true });
  m.append([{ offset: 0, stream: 'STDOUT', text: 'one\ntw' }, { offset: 6, stream: 'STDOUT', text: 'o\nthree\n' }]);
  assert.deepEqual(texts(m), ['one', 'two', 'three']);
  assert.equal(m.end, 14);
  assert.equal(m.openEnd, false);
});

test('bytes already loaded are skipped after a reconnection, by UTF-8 offset', () => {
  const m = new LogModel();
  m.begin({ offset: 0, size: 0, start: true });
  m.append([{ offset: 0, stream: 'STDOUT', text: 'é1\n' }]);  // 4 bytes
  assert.equal(m.begin({ offset: 0, size: 4, start: true }), null);
  m.append([{ offset: 0, stream: 'STDOUT', text: 'é1\né2\n' }]);
  assert.deepEqual(texts(m), ['é1', 'é2']);
  assert.equal(m.end, 8);
});

test('a reconnection that skipped bytes names the range to fetch', () => {
  const m = new LogModel();
  m.begin({ offset: 100, size: 110, start: true });
  m.append([{ offset: 100, stream: 'STDOUT', text: 'abc\n' }]);
  assert.deepEqual(m.begin({ offset: 200, size: 300, start: true }), { offset: 104, length: 96 });
});

test('load earlier prepends and joins the line the tail started in', () => {
  const m = new LogModel();
  m.begin({ offset: 6, size: 12, start: true });
  m.append([{ offset: 6, stream: 'STDOUT', text: 'ond\nthird\n' }]);
  assert.deepEqual(texts(m), ['ond', 'third']);
  const added = m.prepend({ offset: 0, end: 6, size: 16, chunks: [{ offset: 0, stream: 'STDOUT', text: 'first\nsec' }] });
  assert.equal(added, 1);
  assert.deepEqual(texts(m), ['first', 'second', 'third']);
  assert.equal(m.start, 0);
  assert.equal(m.generation, 1);
});

test('a range that does not end where the loaded part starts is ignored', () => {
  const m = new LogModel();
  m.begin({ offset: 10, size: 20, start: true });
  m.append([{ offset: 10, stream: 'STDOUT', text: 'x\n' }]);
  assert.equal(m.prepend({ offset: 0, end: 5, size: 20, chunks: [{ offset: 0, text: 'abcde' }] }), 0);
  assert.deepEqual(texts(m), ['x']);
});

test('UTF-8 lengths count multi-byte characters and surrogate pairs', () => {
  assert.equal(utf8Length('abc'), 3);
  assert.equal(utf8Length('é'), 2);
  assert.equal(utf8Length('€'), 3);
  assert.equal(utf8Length('😀'), 4);
});

test('a 100 MB log of a million lines appends in 1 MiB pieces of a few milliseconds each', () => {
  const m = new LogModel();
  m.begin({ offset: 0, size: 0, start: true });
  const chunk = `${'x'.repeat(99)}\n`.repeat(10486);
  const times = [];
  for (let i = 0; i < 100; i++) {
    const t0 = performance.now();
    m.append([{ offset: i * chunk.length, stream: 'STDOUT', text: chunk }]);
    times.push(performance.now() - t0);
  }
  assert.equal(m.texts.length, 1048600);
  times.sort((a, b) => a - b);
  // The median piece; the slowest ones are the collector's pauses, which a loaded machine stretches.
  assert.ok(times[50] < 50, `the median 1 MiB took ${times[50]} ms`);
});
