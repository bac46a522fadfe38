// The loaded part of a step's log as arrays of lines (texts, and the stream of each: two arrays of
// strings rather than an object per line, which a million-line log would spend its time collecting): the tail first, new output appended as it
// is pushed, earlier bytes prepended by "load earlier". Offsets are bytes of the task's whole log
// (UTF-8), as the API gives them.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

let scratch = new Uint8Array(1 << 16);

// The UTF-8 length of a text (encodeInto is ten times faster than counting in a loop).
export function utf8Length(text) {
  if (scratch.length < text.length * 3) scratch = new Uint8Array(text.length * 3);
  return encoder.encodeInto(text, scratch).written;
}

// Drops the first `bytes` bytes of a text.
function skipBytes(text, bytes) {
  return decoder.decode(encoder.encode(text).subarray(bytes));
}

export class LogModel {
  constructor() {
    this.texts = [];        // the lines, without their newlines
    this.streams = [];      // the stream each line came from: STDOUT, STDERR, SYSTEM, GAP
    this.start = null;      // offset of the first loaded byte (null: nothing yet)
    this.end = 0;           // offset after the last loaded byte
    this.size = 0;          // the log's size as last reported
    this.openEnd = false;   // the last line has no newline yet
    this.generation = 0;    // bumped when lines are prepended (indices shift)
  }

  // The stream's first event: {offset, size, start: true}. On a reconnection, returns the range
  // [end, offset) the stream skipped (or null).
  begin(event) {
    this.size = Math.max(this.size, Number(event.size) || 0);
    const offset = Number(event.offset) || 0;
    if (this.start === null) {
      this.start = offset;
      this.end = offset;
      return null;
    }
    return offset > this.end ? { offset: this.end, length: offset - this.end } : null;
  }

  // Appends pushed chunks ({offset, stream, text}), skipping bytes already loaded.
  append(chunks) {
    for (const chunk of chunks) {
      let text = chunk.text || '';
      const offset = Number(chunk.offset) || 0;
      if (this.start === null) { this.start = offset; this.end = offset; }
      const length = utf8Length(text);
      if (offset + length <= this.end) continue;
      if (offset < this.end) text = skipBytes(text, this.end - offset);
      else if (offset > this.end) this.pushGap(offset - this.end);
      this.pushText(this.texts, this.streams, text, chunk.stream);
      this.end = offset + length;
      this.size = Math.max(this.size, this.end);
    }
  }

  pushGap(bytes) {
    if (this.openEnd) this.openEnd = false;
    this.texts.push(`… ${bytes} bytes not loaded (see the raw log) …`);
    this.streams.push('GAP');
  }

  // Splits text into lines, continuing the last one if it had no newline.
  pushText(texts, streams, text, stream) {
    const parts = text.split('\n');
    let i = 0;
    if (this.openEnd && texts.length) {
      texts[texts.length - 1] += parts[0];
      i = 1;
    }
    for (; i < parts.length; i++) {
      texts.push(parts[i]);
      streams.push(stream);
    }
    // "a\nb\n" splits into [a, b, ""]: the empty last part is the open line to come.
    this.openEnd = true;
    if (parts[parts.length - 1] === '') {
      texts.pop();
      streams.pop();
      this.openEnd = false;
    }
  }

  // Prepends a /log/range answer ending where the loaded part starts; returns the lines added.
  prepend(range) {
    const end = Number(range.end);
    if (this.start === null || end !== this.start) return 0;
    const saved = this.openEnd;
    this.openEnd = false;
    const texts = [];
    const streams = [];
    for (const chunk of range.chunks || []) this.pushText(texts, streams, chunk.text || '', chunk.stream);
    const open = this.openEnd;
    this.openEnd = saved;
    // The loaded part may have started mid-line: join the halves.
    if (open && texts.length && this.texts.length) {
      this.texts[0] = texts.pop() + this.texts[0];
      this.streams[0] = streams.pop();
    }
    this.texts = texts.concat(this.texts);
    this.streams = streams.concat(this.streams);
    this.start = Number(range.offset);
    this.size = Math.max(this.size, Number(range.size) || 0);
    this.generation++;
    return texts.length;
  }
}
