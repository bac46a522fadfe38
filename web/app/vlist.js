// A virtualised list of log lines: only the lines in view (and a few around them) are in the DOM,
// so a log of millions of lines scrolls as one of ten. Lines are one fixed height, never wrapped.
import { html, useEffect, useLayoutEffect, useRef, useState } from '/vendor/htm/preact/standalone.module.js';
import { segmentsOf } from './ansi.js';

export const LINE_HEIGHT = 18;
const OVERSCAN = 20;
const MAX_CHARS = 4000;  // longer lines are cut here; the raw view has them whole

function highlight(text, query, key) {
  if (!query) return text;
  const out = [];
  const lower = text.toLowerCase();
  let at = 0;
  for (let i = lower.indexOf(query, at); i >= 0; i = lower.indexOf(query, at)) {
    if (i > at) out.push(text.slice(at, i));
    out.push(html`<mark key=${`${key}-${i}`}>${text.slice(i, i + query.length)}</mark>`);
    at = i + query.length;
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}

function Line({ text, stream, top, query, current }) {
  const cut = text.length > MAX_CHARS ? text.length - MAX_CHARS : 0;
  if (cut) text = text.slice(0, MAX_CHARS);
  const segments = segmentsOf(text);  // a match across two colours is found but not marked
  return html`<div class=${`line ${String(stream || '').toLowerCase()}${current ? ' current' : ''}`} style=${{ top: `${top}px` }}>${
    segments.map((s, i) => (s.style
      ? html`<span key=${i} style=${s.style}>${highlight(s.text, query, i)}</span>`
      : highlight(s.text, query, i)))}${cut ? html`<span class="cut"> … ${cut} more characters (raw log)</span>` : null}</div>`;
}

// props: texts and streams (LogModel's), version (changes when lines change), follow (keep the end in view), onScrolled(atEnd),
// query (lower case, highlighted), current (the index of the line to show), currentSeq (bumped to jump)
export function VirtualLines({ texts, streams, version, follow, onScrolled, query, current, currentSeq, keepOffset }) {
  const box = useRef(null);
  const [view, setView] = useState({ top: 0, height: 600 });
  const atEnd = useRef(true);
  const kept = useRef(null);

  useEffect(() => {
    const el = box.current;
    const observer = new ResizeObserver(() => setView({ top: el.scrollTop, height: el.clientHeight }));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  // After new lines: stay at the end when following; stay on the same lines after a prepend.
  useLayoutEffect(() => {
    const el = box.current;
    if (keepOffset && keepOffset !== kept.current) {
      kept.current = keepOffset;
      el.scrollTop += keepOffset.lines * LINE_HEIGHT;
    } else if (follow) el.scrollTop = el.scrollHeight;
    setView({ top: el.scrollTop, height: el.clientHeight });
  }, [version, keepOffset, follow]);
  useLayoutEffect(() => {
    if (current === null || current === undefined || current < 0) return;
    const el = box.current;
    el.scrollTop = Math.max(0, current * LINE_HEIGHT - el.clientHeight / 2);
    setView({ top: el.scrollTop, height: el.clientHeight });
  }, [currentSeq]);

  const onScroll = () => {
    const el = box.current;
    atEnd.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 2 * LINE_HEIGHT;
    setView({ top: el.scrollTop, height: el.clientHeight });
    if (onScrolled) onScrolled(atEnd.current);
  };

  const first = Math.max(0, Math.floor(view.top / LINE_HEIGHT) - OVERSCAN);
  const last = Math.min(texts.length, Math.ceil((view.top + view.height) / LINE_HEIGHT) + OVERSCAN);
  const shown = [];
  for (let i = first; i < last; i++) {
    shown.push(html`<${Line} key=${i} text=${texts[i]} stream=${streams[i]} top=${i * LINE_HEIGHT} query=${query}
      current=${i === current} />`);
  }
  return html`<div class="log-lines" ref=${box} onScroll=${onScroll} data-lines=${texts.length}>
    <div class="log-spacer" style=${{ height: `${texts.length * LINE_HEIGHT}px` }}>${shown}</div>
  </div>`;
}
