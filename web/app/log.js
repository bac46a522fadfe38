// A step's log: the last 64 KiB at once, then live output as the step runs; "load earlier" in
// 1 MiB pieces; search with highlight and jump; the raw text one click away (a blob: URL of the
// text fetched with the token, never a token in a URL).
import { html, useEffect, useMemo, useRef, useState } from '/vendor/htm/preact/standalone.module.js';
import { apiPath, request, requestBlob, watch } from './api.js';
import { jobHref } from './router.js';
import { LogModel } from './logmodel.js';
import { VirtualLines } from './vlist.js';
import { plainOf } from './ansi.js';
import { formatBytes, frameBatcher, stateName, taskTimes, timesTitle } from './util.js';

const TAIL = 65536;
const EARLIER = 1 << 20;

// Streams the log into a LogModel; returns [model, version, status, error, bump].
function useLog(id, task) {
  const model = useMemo(() => new LogModel(), [id, task]);
  const [version, setVersion] = useState(0);
  const [status, setStatus] = useState('connecting');
  const [error, setError] = useState(null);
  const bump = () => setVersion((v) => v + 1);
  useEffect(() => {
    const base = `jobs/${encodeURIComponent(id)}/log`;
    let pending = [];
    let filling = false;  // pushed output waits while the bytes a reconnection skipped are fetched
    const flush = frameBatcher(() => {
      if (filling) return;
      model.append(pending);
      pending = [];
      bump();
    });
    const fillGap = async (gap) => {
      if (!gap) return;
      filling = true;
      try {
        const length = Math.min(gap.length, EARLIER);  // beyond that, a "not loaded" line
        const range = await request(apiPath(`${base}/range`, { task, offset: gap.offset, length }));
        model.append(range.chunks || []);
      } finally {
        filling = false;
        flush();
      }
    };
    return watch(apiPath(base, { task, tail: TAIL, follow: 1 }), {
      onMessage: (m) => {
        if (m.start) {
          setStatus('live');
          flush();
          fillGap(model.begin(m)).catch(setError);
          bump();
        } else {
          pending.push(m);
          flush();
        }
      },
      onError: (e) => {
        setError(e);
        if (e) setStatus([400, 401, 403, 404].includes(e.status) ? 'failed' : 'reconnecting');
      },
      again: () => { setStatus('ended'); return false; },
    });
  }, [id, task]);
  return [model, version, status, error, bump];
}

// Search over the loaded lines: the indices of matching lines, kept up to date as lines come.
function useSearch(model, version, query) {
  const state = useRef({ query: '', generation: -1, scanned: 0, matches: [] });
  return useMemo(() => {
    const s = state.current;
    if (s.query !== query || s.generation !== model.generation) {
      Object.assign(s, { query, generation: model.generation, scanned: 0, matches: [] });
    }
    if (query) {
      const texts = model.texts;
      for (let i = s.scanned; i < texts.length; i++) {
        if (plainOf(texts[i]).toLowerCase().includes(query)) s.matches.push(i);
      }
      s.scanned = texts.length;
    }
    return s.matches.slice();
  }, [version, query, model.generation]);
}

function TaskLine({ id, task }) {
  const [info, setInfo] = useState(null);
  useEffect(() => {
    request(apiPath(`jobs/${encodeURIComponent(id)}`)).then((job) => {
      setInfo({ job, task: (job.tasks || []).find((t) => t.id === task) || null });
    }).catch(() => setInfo(null));
  }, [id, task]);
  const t = info && info.task;
  return html`<header class="log-header">
    <h1><a href=${jobHref(id)}>${info ? info.job.name : ''} ${id}</a> / <span class="task-name">${task}</span>
      ${t ? html` <span class=${`badge state-${stateName(t.state)}`}>${stateName(t.state)}</span>` : null}</h1>
    ${t ? html`<p class="task-info">${timesTitle(taskTimes(t))}${t.message ? ` · ${t.message}` : ''}
      ${t.cached ? ' · cached' : ''}${t.flaky ? ' · flaky' : ''}</p>` : null}
  </header>`;
}

function SearchBox({ matches, current, onQuery, onJump }) {
  const [text, setText] = useState('');
  const step = (d) => onJump(d);
  return html`<form class="search" onSubmit=${(e) => { e.preventDefault(); step(1); }}>
    <input type="search" placeholder="search the loaded log" value=${text}
      onInput=${(e) => { setText(e.target.value); onQuery(e.target.value.toLowerCase()); }} />
    <button type="button" onClick=${() => step(-1)} disabled=${!matches.length}>↑</button>
    <button type="submit" disabled=${!matches.length}>↓</button>
    <span class="search-count">${text ? `${matches.length ? current + 1 : 0} of ${matches.length}` : ''}</span>
  </form>`;
}

async function openRaw(id, task, setError) {
  try {
    const blob = await requestBlob(apiPath(`jobs/${encodeURIComponent(id)}/log/raw`, { task }));
    const url = URL.createObjectURL(new Blob([blob], { type: 'text/plain;charset=utf-8' }));
    window.open(url, '_blank');
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (e) {
    setError(e.message);
  }
}

export function LogView({ id, task }) {
  const [model, version, status, error, bump] = useLog(id, task);
  const [query, setQuery] = useState('');
  const [current, setCurrent] = useState(-1);
  const [jumpSeq, setJumpSeq] = useState(0);
  const [follow, setFollow] = useState(true);
  const [keep, setKeep] = useState(null);
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState('');
  const matches = useSearch(model, version, query);

  const jump = (d) => {
    if (!matches.length) return;
    const at = matches.indexOf(current);
    const next = at < 0 ? (d > 0 ? 0 : matches.length - 1) : (at + d + matches.length) % matches.length;
    setCurrent(matches[next]);
    setFollow(false);
    setJumpSeq(jumpSeq + 1);
  };
  const loadEarlier = async () => {
    setBusy(true);
    try {
      const length = Math.min(EARLIER, model.start);
      const range = await request(apiPath(`jobs/${encodeURIComponent(id)}/log/range`,
        { task, offset: model.start - length, length }));
      const added = model.prepend(range);
      setKeep({ lines: added });
      if (current >= 0) setCurrent(current + added);
      bump();
    } catch (e) {
      setActionError(e.message);
    } finally {
      setBusy(false);
    }
  };
  const earlier = model.start !== null && model.start > 0;
  return html`<section class="log">
    <${TaskLine} id=${id} task=${task} />
    <div class="log-tools">
      ${earlier ? html`<button type="button" class="load-earlier" disabled=${busy} onClick=${loadEarlier}>
        Load earlier (${formatBytes(model.start)} before)</button>` : null}
      <button type="button" class="raw" onClick=${() => openRaw(id, task, setActionError)}>Raw text</button>
      <label><input type="checkbox" class="follow" checked=${follow} onChange=${(e) => setFollow(e.target.checked)} /> follow</label>
      <${SearchBox} matches=${matches} current=${matches.indexOf(current)} onQuery=${(q) => { setQuery(q); setCurrent(-1); }} onJump=${jump} />
      <span class=${`log-status ${status}`}>${status}</span>
      <span class="log-size">${formatBytes(model.size)}</span>
    </div>
    ${error ? html`<p class="error">${error.message}</p>` : null}
    ${actionError ? html`<p class="error">${actionError}</p>` : null}
    <${VirtualLines} texts=${model.texts} streams=${model.streams} version=${version} follow=${follow} query=${query}
      current=${current} currentSeq=${jumpSeq} keepOffset=${keep}
      onScrolled=${(atEnd) => { if (atEnd !== follow) setFollow(atEnd); }} />
  </section>`;
}

