// The job's artifacts: for each task with output files (its result's `output_files`), the files'
// paths and sizes and a download button each. A file is fetched with the token (an Authorization
// header, never a URL), made a blob: URL and saved through a temporary <a download>. The section
// sits below the per-step times and opens by itself only when its list is short; a big job lists
// the first MAX_TASKS tasks with files.
import { html, useMemo, useState } from '/vendor/htm/preact/standalone.module.js';
import { apiPath, requestBlob } from './api.js';
import { logHref } from './router.js';
import { formatBytes, num } from './util.js';

const MAX_TASKS = 100;  // tasks listed
const MAX_FILES = 50;   // files listed per task
const OPEN_UP_TO = 20;  // files: a list this short is open at first

const filesOf = (task) => (task.result && task.result.output_files) || [];
const sizeOf = (file) => num(file.digest && file.digest.size_bytes);
const baseName = (p) => String(p).slice(String(p).lastIndexOf('/') + 1) || 'artifact';
const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

// Downloads an output file of a task: fetched with the token, saved under the file's name.
export async function downloadArtifact(jobId, taskId, path) {
  const blob = await requestBlob(apiPath(`jobs/${encodeURIComponent(jobId)}/artifact`, { task: taskId, path }),
    'application/octet-stream');
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = baseName(path);
  a.hidden = true;
  document.body.appendChild(a);
  try {
    a.click();
  } finally {
    a.remove();
    // Not at once: the browser may read the blob after click() returns.
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }
}

function FileRow({ jobId, taskId, file, first, span, allowed }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const save = async () => {
    setBusy(true);
    setError('');
    try {
      await downloadArtifact(jobId, taskId, file.path);
    } catch (e) {
      setError(e.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<tr class="artifact" data-task=${taskId} data-path=${file.path}>
    ${first ? html`<th class="task" rowspan=${span} scope="rowgroup"><a href=${logHref(jobId, taskId)}>${taskId}</a></th>` : null}
    <td class="path"><code>${file.path}</code></td>
    <td class="num">${formatBytes(sizeOf(file))}</td>
    <td class="actions"><button type="button" class="download" disabled=${busy || !allowed}
      title=${allowed ? `download ${baseName(file.path)}` : 'needs a token with the cache-read scope'}
      onClick=${save}>${busy ? 'Downloading…' : 'Download'}</button>
      ${error ? html` <span class="error">${error}</span>` : null}</td>
  </tr>`;
}

function TaskFiles({ jobId, task, allowed }) {
  const files = filesOf(task);
  const shown = files.slice(0, MAX_FILES);
  const span = shown.length + (files.length > MAX_FILES ? 1 : 0);
  return html`<tbody class="artifact-task">
    ${shown.map((file, i) => html`<${FileRow} key=${file.path} jobId=${jobId} taskId=${task.id} file=${file}
      first=${i === 0} span=${span} allowed=${allowed} />`)}
    ${files.length > MAX_FILES ? html`<tr class="more"><td colspan="3" class="muted">
      and ${plural(files.length - MAX_FILES, 'more file', 'more files')}</td></tr>` : null}
  </tbody>`;
}

export function Artifacts({ jobId, tasks, session }) {
  const withFiles = useMemo(() => tasks.filter((t) => filesOf(t).length > 0), [tasks]);
  const [open, setOpen] = useState(null);  // null: as the list's length says, until toggled
  if (!withFiles.length) return null;
  let files = 0;
  let bytes = 0;
  for (const t of withFiles) {
    for (const f of filesOf(t)) { files++; bytes += sizeOf(f); }
  }
  const isOpen = open === null ? files <= OPEN_UP_TO : open;
  const allowed = !(session && session.auth) || (session.scopes || []).includes('cache-read');
  const more = withFiles.length - MAX_TASKS;
  return html`<details class="artifacts" open=${isOpen} onToggle=${(e) => setOpen(e.currentTarget.open)}>
    <summary>${`Artifacts: ${plural(files, 'file', 'files')} of ${plural(withFiles.length, 'task', 'tasks')}, ${formatBytes(bytes)}`}</summary>
    ${isOpen ? html`<table class="artifacts">
      <thead><tr><th>task</th><th>file</th><th class="num">size</th><th></th></tr></thead>
      ${withFiles.slice(0, MAX_TASKS).map((t) => html`<${TaskFiles} key=${t.id} jobId=${jobId} task=${t} allowed=${allowed} />`)}
    </table>
    ${more > 0 ? html`<p class="muted artifacts-more">${plural(more, 'more task', 'more tasks')} with files not
      listed; <code>assay artifacts ${jobId} --out DIR</code> downloads every one.</p>` : null}` : null}
  </details>`;
}
