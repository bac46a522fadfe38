// The page's entry: asks the coordinator who we are (/api/v1/session), asks for a token when the
// API answers 401, and shows the view the address's fragment names.
import { html, render, useEffect, useState } from '/vendor/htm/preact/standalone.module.js';
import { getToken, onUnauthorized, request, setToken } from './api.js';
import { useRoute } from './router.js';
import { TokenForm } from './token.js';
import { JobsView } from './jobs.js';
import { JobView } from './job.js';
import { LogView } from './log.js';
import { TrendsView } from './trends.js';
import { WorkersView } from './workers.js';
import { QueueView } from './queue.js';

const NAV = [['jobs', 'Jobs'], ['trends', 'Trends'], ['workers', 'Workers'], ['queue', 'Queue & cache']];

function Header({ route, session, onSignOut }) {
  const current = route.view === 'job' || route.view === 'log' ? 'jobs' : route.view;
  return html`<header class="top">
    <a class="brand" href="#/jobs">Assay</a>
    <nav>${NAV.map(([view, label]) => html`
      <a key=${view} href=${`#/${view}`} class=${current === view ? 'current' : ''}>${label}</a>`)}
    </nav>
    <span class="who">
      ${session && session.auth ? html`<span class="scopes">${(session.scopes || []).join(', ')}</span>
        <button type="button" class="link" onClick=${onSignOut}>forget token</button>` : null}
    </span>
  </header>`;
}

function View({ route, session }) {
  switch (route.view) {
    case 'jobs': return html`<${JobsView} params=${route.params} />`;
    case 'job': return html`<${JobView} id=${route.id} session=${session} />`;
    case 'log': return html`<${LogView} id=${route.id} task=${route.params.get('task') || ''} />`;
    case 'trends': return html`<${TrendsView} params=${route.params} />`;
    case 'workers': return html`<${WorkersView} session=${session} />`;
    case 'queue': return html`<${QueueView} />`;
    default: return html`<p class="error">No such page: ${route.path}. <a href="#/jobs">Jobs</a></p>`;
  }
}

function App() {
  const route = useRoute();
  const [session, setSession] = useState(null);
  const [needToken, setNeedToken] = useState(false);
  const [epoch, setEpoch] = useState(0);  // bumped when the token changes: every view starts over
  const [error, setError] = useState('');

  useEffect(() => onUnauthorized(() => setNeedToken(true)), []);
  useEffect(() => {
    setError('');
    request('/api/v1/session').then((s) => { setSession(s); setNeedToken(false); })
      .catch((e) => { if (e.status !== 401) setError(e.message); });
  }, [epoch]);

  const useToken = (token) => { setToken(token); setNeedToken(false); setSession(null); setEpoch(epoch + 1); };
  const signOut = () => { setToken(''); setSession(null); setEpoch(epoch + 1); };

  let body;
  if (needToken) body = html`<${TokenForm} hadToken=${!!getToken()} onToken=${useToken} />`;
  else if (error) body = html`<p class="error">The coordinator did not answer: ${error}</p>`;
  else if (!session) body = html`<p class="loading">Loading…</p>`;
  else body = html`<${View} key=${epoch} route=${route} session=${session} />`;
  return html`<${Header} route=${route} session=${session} onSignOut=${signOut} />
    <main>${body}</main>`;
}

const root = document.getElementById('app');
root.textContent = '';  // the static "Loading…"
render(html`<${App} />`, root);
