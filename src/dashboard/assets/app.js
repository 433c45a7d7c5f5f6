// The dashboard's page: a small router over three views (overview, list, instance),
// live updates from the server's event stream (/api/live), and the API calls.
import { ago, errorBlock, fill, h, instanceHref, link, num, s, seconds } from './dom.js';
import { renderInstance } from './instance.js';
import { renderList } from './list.js';

const main = document.getElementById('main');
const notice = document.getElementById('notice');
export const app = { readOnly: true, current: null };

export class ApiError extends Error {}

export async function api(path, init = {}) {
  const res = await fetch(path, { credentials: 'same-origin', ...init, headers: { accept: 'application/json', ...(init.headers ?? {}) } });
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON
  }
  if (!res.ok) throw new ApiError(body?.error?.message ?? `${res.status} ${res.statusText}`);
  return body;
}

export function post(path, body) {
  return api(path, { method: 'POST', headers: { 'content-type': 'application/json', 'x-baton-dashboard': '1' }, body: JSON.stringify(body ?? {}) });
}

export function showNotice(text, kind = 'error') {
  notice.hidden = !text;
  notice.className = `notice ${kind}`;
  notice.textContent = text ?? '';
}

export function navigate(href) {
  history.pushState(null, '', href);
  route();
}

document.addEventListener('click', (e) => {
  const a = e.target.closest?.('a[data-link], nav a');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
  e.preventDefault();
  navigate(a.getAttribute('href'));
});
window.addEventListener('popstate', () => route());

async function route() {
  showNotice(null);
  const path = location.pathname;
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.nav === (path === '/' ? 'overview' : 'instances'));
  let view;
  if (path === '/') view = overviewView();
  else if (path === '/instances') view = renderList(new URLSearchParams(location.search));
  else if (path.startsWith('/instances/')) {
    let id;
    try {
      id = decodeURIComponent(path.slice('/instances/'.length));
    } catch {
      id = null;
    }
    view = id === null ? errorView('This address has a malformed %-escape.') : renderInstance(id);
  } else view = errorView(`No page at ${path}.`);
  document.title = path === '/' ? 'Baton' : path === '/instances' ? 'Instances · Baton' : document.title;
  app.current = view;
  main.replaceChildren(view.el);
  await view.refresh().catch((e) => showNotice(e.message));
}

function errorView(message) {
  return { el: h('p', { class: 'error' }, message), refresh: async () => undefined };
}

// ---- overview ----

const STATUSES = ['pending', 'running', 'paused', 'completed', 'failed', 'cancelled', 'compensated'];

function overviewView() {
  const el = h('div', { class: 'overview' });
  return {
    el,
    async refresh() {
      const o = await api('/api/overview');
      fill(el,
        h('h1', {}, 'Overview'),
        countsSection(o.counts),
        h('div', { class: 'grid2' }, throughputSection(o.throughput), backlogSection(o.backlog)),
        workersSection(o.workers, o.orphanLeases),
        failuresSection(o.failures),
        h('p', { class: 'muted small' }, `Read ${ago(o.generatedAt)}.`),
      );
    },
  };
}

function countsSection(c) {
  // Estimates with no statistics yet (the table was never analyzed): say so rather than show zeros.
  const unknown = c.estimated && Object.keys(c.counts).length === 0;
  return h(
    'section',
    { class: 'counts' },
    STATUSES.map((st) =>
      link(`/instances?status=${st}`, h('div', { class: `count st-${st}`, 'data-count': st }, h('div', { class: 'n' }, unknown ? '?' : `${c.estimated ? '≈' : ''}${num(c.counts[st] ?? 0)}`), h('div', { class: 'label' }, st))),
    ),
    h('div', { class: 'muted small total' }, unknown
      ? `at least ${num(c.total)} instances; counts by status appear once the table has statistics (ANALYZE baton.workflows; autovacuum runs it)`
      : `${c.estimated ? '≈' : ''}${num(c.total)} instances${c.estimated ? ' (estimated from table statistics: the table is large)' : ''}`),
  );
}

function throughputSection(t) {
  const W = 600, H = 160, pad = 24;
  const max = Math.max(1, ...t.minutes.map((m) => Math.max(m.started, m.completed + m.failed + m.cancelled + m.compensated)));
  const bw = (W - pad) / t.minutes.length;
  const y = (v) => H - pad - (v / max) * (H - pad * 2);
  const bars = t.minutes.map((m, i) => {
    const x = pad + i * bw;
    let top = H - pad;
    const parts = [];
    for (const [k, v] of [['completed', m.completed], ['failed', m.failed], ['cancelled', m.cancelled], ['compensated', m.compensated]]) {
      if (!v) continue;
      const hgt = (v / max) * (H - pad * 2);
      top -= hgt;
      parts.push(s('rect', { x: x + 1, y: top, width: Math.max(1, bw - 2), height: hgt, class: `bar-${k}` }, s('title', {}, `${new Date(m.at).toLocaleTimeString()}: ${v} ${k}`)));
    }
    return parts;
  });
  const line = t.minutes.map((m, i) => `${i ? 'L' : 'M'}${(pad + i * bw + bw / 2).toFixed(1)},${y(m.started).toFixed(1)}`).join(' ');
  const svg = s(
    'svg',
    { viewBox: `0 0 ${W} ${H}`, class: 'plot', role: 'img', 'aria-label': 'instances started and ended per minute, last hour' },
    s('line', { x1: pad, y1: H - pad, x2: W, y2: H - pad, class: 'axis' }),
    s('text', { x: 2, y: pad, class: 'tick' }, num(max)),
    s('text', { x: 2, y: H - pad, class: 'tick' }, '0'),
    s('text', { x: pad, y: H - 6, class: 'tick' }, '-60 min'),
    s('text', { x: W - 30, y: H - 6, class: 'tick' }, 'now'),
    bars,
    s('path', { d: line, class: 'started' }),
  );
  const sum = (k) => t.minutes.reduce((a, m) => a + m[k], 0);
  return h(
    'section',
    {},
    h('h2', {}, 'Throughput, last hour'),
    svg,
    h(
      'p',
      { class: 'legend small' },
      h('span', { class: 'key started' }, 'started'), ` ${num(sum('started'))} · `,
      h('span', { class: 'key completed' }, 'completed'), ` ${num(sum('completed'))} · `,
      h('span', { class: 'key failed' }, 'failed'), ` ${num(sum('failed'))} · `,
      h('span', { class: 'key cancelled' }, 'cancelled'), ` ${num(sum('cancelled'))} · `,
      h('span', { class: 'key compensated' }, 'compensated'), ` ${num(sum('compensated'))}`,
      t.truncated ? h('span', { class: 'muted' }, ' (the newest instances only: older minutes undercount)') : null,
    ),
  );
}

function backlogSection(backlog) {
  return h(
    'section',
    {},
    h('h2', {}, 'Ready backlog'),
    backlog === null
      ? h('p', { class: 'muted' }, 'The backlog is too large to count in time.')
      : backlog.length === 0
        ? h('p', { class: 'muted' }, 'No task is waiting for a worker.')
        : h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'task'), h('th', { class: 'r' }, 'ready'), h('th', { class: 'r' }, 'oldest'))),
            h('tbody', {}, backlog.map((b) => h('tr', {}, h('td', {}, b.name), h('td', { class: 'r' }, num(b.ready)), h('td', { class: 'r' }, seconds(b.oldestAgeSeconds)))))),
  );
}

function workersSection(workers, orphans) {
  const leases = (l) => (l.held === 0 ? '0' : h('span', {}, `${num(l.held)} `, h('span', { class: 'muted small' }, '(', l.sample.map((t, i) => [i ? ', ' : '', link(instanceHref(t.workflowId), `${t.workflowId}/${t.taskKey}`)]), l.held > l.sample.length ? ', …' : '', `; next expiry ${ago(l.nextExpiry)})`)));
  return h(
    'section',
    {},
    h('h2', {}, `Live workers (${workers.length})`),
    workers.length === 0
      ? h('p', { class: 'muted' }, 'No worker has sent a heartbeat recently.')
      : h('table', { class: 'workers' },
          h('thead', {}, h('tr', {}, ['worker', 'host', 'pid', 'slots', 'tags', 'started', 'heartbeat', 'leases held'].map((c) => h('th', {}, c)))),
          h('tbody', {}, workers.map((w) => h('tr', {}, h('td', { class: 'mono' }, w.id), h('td', {}, w.host), h('td', {}, w.pid), h('td', {}, w.concurrency), h('td', {}, w.tags.join(', ') || '-'), h('td', {}, ago(w.startedAt)), h('td', {}, ago(w.heartbeatAt)), h('td', {}, leases(w.leases)))))),
    orphans.length ? h('p', { class: 'muted small' }, `Leases held by workers without a recent heartbeat: ${orphans.map((o) => `${o.workerId} (${o.held})`).join(', ')}; the reconciler gives them back when they expire.`) : null,
  );
}

function failuresSection(failures) {
  return h(
    'section',
    {},
    h('h2', {}, 'Recent failures'),
    failures.length === 0
      ? h('p', { class: 'muted' }, 'No recent instance failed.')
      : h('table', {},
          h('thead', {}, h('tr', {}, ['instance', 'workflow', 'step', 'error', 'failed'].map((c) => h('th', {}, c)))),
          h('tbody', {}, failures.map((f) => h('tr', {}, h('td', { class: 'mono' }, link(instanceHref(f.id), f.id)), h('td', {}, f.name), h('td', {}, f.currentStep ?? '-'), h('td', {}, errorBlock(f.error)), h('td', {}, ago(f.finishedAt)))))),
  );
}

// ---- live updates ----

// A browser opens at most six connections to one HTTP/1.1 server, and each open stream holds one: a tab
// that is hidden closes its stream, and on coming back reconnects and re-reads what it shows.
let events = null;

document.addEventListener('visibilitychange', () => {
  if (document.hidden) {
    events?.close();
    events = null;
    const indicator = document.getElementById('live');
    indicator.textContent = '○ paused (tab hidden)';
    indicator.className = 'live off';
  } else if (!events) {
    connectLive();
    app.current?.refresh().catch((e) => showNotice(e.message));
  }
});

function connectLive() {
  const indicator = document.getElementById('live');
  events = new EventSource('/api/live');
  events.addEventListener('hello', (e) => {
    const { listening } = JSON.parse(e.data);
    indicator.textContent = listening ? '● live' : '○ not live';
    indicator.className = listening ? 'live on' : 'live off';
    indicator.title = listening ? 'changes arrive from the database as they happen' : 'the dashboard has no LISTEN connection (it was given a pool without a URL)';
  });
  events.addEventListener('change', (e) => {
    const { ids } = JSON.parse(e.data);
    const view = app.current;
    if (view?.onChange) view.onChange(ids);
    else view?.refresh().catch((err) => showNotice(err.message));
  });
  events.addEventListener('error', () => {
    indicator.textContent = '○ reconnecting';
    indicator.className = 'live off';
  });
}

async function start() {
  try {
    const config = await api('/api/config');
    app.readOnly = config.readOnly;
    document.getElementById('readonly').hidden = !config.readOnly;
  } catch (e) {
    showNotice(e.message);
  }
  connectLive();
  await route();
}

void start();
