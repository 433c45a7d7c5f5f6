// One instance: its graph, tasks with their attempts, history, and the actions (each asks to confirm).
import { api, app, post, showNotice } from './app.js';
import { ago, badge, errorBlock, fill, h, instanceHref, json, link, when } from './dom.js';
import { drawGraph } from './graph.js';

const ACTIONS = {
  cancel: { label: 'Cancel', when: ['pending', 'running', 'paused'], confirm: (id) => `Cancel instance ${id}? Its running tasks are told to stop; this cannot be undone (retry starts it again).` },
  pause: { label: 'Pause', when: ['pending', 'running'], confirm: (id) => `Pause instance ${id}? Running tasks finish; nothing else of it runs until resumed.` },
  resume: { label: 'Resume', when: ['paused'], confirm: (id) => `Resume instance ${id}?` },
  retry: { label: 'Retry', when: ['failed', 'cancelled'], confirm: (id) => `Retry instance ${id} from the steps that failed or were cancelled?` },
};

// History kinds that are one attempt of one task (detail.key names it).
const ATTEMPT_KINDS = new Set(['completed', 'retry', 'task_failed', 'timed_out', 'lease_lost']);

export function renderInstance(id) {
  const el = h('div', { class: 'instance' });
  let latest = null;
  let latestText = '';
  // Kept across re-renders, so that a live update does not wipe what the user is typing.
  const name = h('input', { name: 'event', placeholder: 'event name', required: true, size: 14 });
  const payload = h('input', { name: 'payload', placeholder: 'payload (JSON, optional)', size: 22 });

  async function act(action, body) {
    try {
      await post(`/api/instances/${encodeURIComponent(id)}/${action}`, body);
      showNotice(`${action === 'event' ? 'Event sent' : `${ACTIONS[action].label} requested`}.`, 'ok');
      if (action === 'event') name.value = payload.value = '';
      await refresh();
    } catch (e) {
      showNotice(e.message);
    }
  }

  function actions(inst) {
    if (app.readOnly) return null;
    const buttons = Object.entries(ACTIONS)
      .filter(([, a]) => a.when.includes(inst.status))
      .map(([name, a]) => h('button', { type: 'button', class: `action ${name}`, 'data-action': name, onclick: () => confirm(a.confirm(id)) && act(name) }, a.label));
    const form = h('form', { class: 'send-event' }, name, payload, h('button', { type: 'submit' }, 'Send event'));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      let value = null;
      if (payload.value.trim() !== '') {
        try {
          value = JSON.parse(payload.value);
        } catch {
          showNotice('The payload is not valid JSON (a string needs quotes: "text").');
          return;
        }
      }
      if (confirm(`Send event "${name.value}" to instance ${id}?`)) void act('event', { name: name.value, payload: value });
    });
    return h('div', { class: 'actions' }, buttons, ['completed', 'failed', 'cancelled', 'compensated'].includes(inst.status) ? null : form);
  }

  function tasksTable(tasks, history) {
    const attemptsOf = (key) => history.filter((e) => ATTEMPT_KINDS.has(e.kind) && e.detail?.key === key);
    return h('table', { class: 'tasks' },
      h('thead', {}, h('tr', {}, ['step', 'name', 'kind', 'status', 'attempts', 'worker', 'progress', 'started', 'finished'].map((c) => h('th', {}, c)))),
      h('tbody', {}, tasks.map((t) => {
        const attempts = attemptsOf(t.taskKey);
        const progress = t.progress === null ? '-' : h('span', {}, h('progress', { max: 100, value: t.progress }), ` ${Math.round(t.progress)}%${t.progressMessage ? ` ${t.progressMessage}` : ''}`);
        return [
          h('tr', { id: `task-${t.taskKey}`, 'data-task': t.taskKey },
            h('td', { class: 'mono' }, t.taskKey),
            h('td', {}, t.name),
            h('td', {}, t.kind),
            h('td', {}, badge(t.status), t.paused ? h('span', { class: 'muted small' }, ' (held by pause)') : null),
            h('td', {}, `${t.attempts} / ${t.maxAttempts}`, t.leaseLosses ? h('span', { class: 'muted small' }, ` (${t.leaseLosses} leases lost)`) : null),
            h('td', { class: 'mono small' }, t.claimedBy ?? t.lastFailedWorker ?? '-'),
            h('td', {}, progress),
            h('td', {}, ago(t.startedAt)),
            h('td', {}, ago(t.finishedAt))),
          t.lastError || attempts.length
            ? h('tr', { class: 'attempts' }, h('td', { colspan: 9 },
                attempts.length
                  ? h('ol', {}, attempts.map((a) => h('li', {}, h('span', { class: 'muted small' }, `attempt ${a.detail.attempt ?? '?'} · ${a.kind.replace('_', ' ')} · ${a.detail.worker ?? ''} · `, when(a.at)), a.detail.error ? errorBlock(a.detail.error) : null)))
                  : errorBlock(t.lastError)))
            : null,
        ];
      })));
  }

  function historyList(history, from) {
    return h('div', {},
      from > 1 ? h('p', { class: 'muted small' }, `The newest ${history.length} checkpoints (from version ${from}).`) : null,
      h('ol', { class: 'timeline', start: from }, history.map((e) =>
        h('li', { class: `ev ev-${e.kind}` },
          h('span', { class: 'v' }, `v${e.version}`), ' ',
          h('strong', {}, e.kind.replace('_', ' ')), ' ',
          e.detail?.key !== undefined ? h('span', { class: 'mono' }, `step ${e.detail.key} `) : null,
          e.detail?.status ? badge(e.detail.status) : null, ' ',
          when(e.at),
          e.detail?.error ? errorBlock(e.detail.error) : null,
          h('details', { class: 'detail' }, h('summary', {}, 'detail'), json(e.detail))))));
  }

  // A click on a step that ran scrolls to its task row (the newest iteration's, in a loop).
  function showTask(e) {
    const key = e.target.closest?.('g.node')?.dataset.task;
    const row = key === undefined ? null : document.getElementById(`task-${key}`);
    if (!row) return;
    row.scrollIntoView({ behavior: 'smooth', block: 'center' });
    row.classList.add('flash');
    setTimeout(() => row.classList.remove('flash'), 1500);
  }

  async function refresh() {
    const data = await api(`/api/instances/${encodeURIComponent(id)}`);
    // Another instance moved ('*'): nothing to redraw here, and open details stay open.
    const text = JSON.stringify(data);
    if (text === latestText) return;
    latestText = text;
    latest = data;
    document.title = `${id} · Baton`;
    const inst = data.instance;
    fill(el,
      h('div', { class: 'title' }, h('h1', { class: 'mono' }, inst.id), badge(inst.status), h('span', { class: 'muted' }, `${inst.name}`)),
      actions(inst),
      h('div', { class: 'top-grid' },
        h('section', { class: 'graph-section' }, h('h2', {}, 'Graph'),
          data.graph ? h('div', { class: 'graph-wrap', id: 'graph', onclick: showTask }, drawGraph(data.graph, inst.tasks)) : h('p', { class: 'muted' }, 'This definition is not registered: no worker has exported it.'),
          h('p', { class: 'legend small' }, ['none', 'waiting', 'queued', 'ready', 'running', 'completed', 'failed', 'cancelled'].map((st) => h('span', { class: `key node-key st-${st}` }, st === 'none' ? 'not reached' : st)))),
        h('div', {},
          h('dl', { class: 'meta' },
            h('dt', {}, 'workflow'), h('dd', {}, `${inst.name} (definition ${inst.definitionHash}${inst.definitionVersion && inst.definitionVersion !== 1 ? `, version ${inst.definitionVersion}` : ''})`),
            h('dt', {}, 'current step'), h('dd', {}, inst.currentStep ?? '-'),
            h('dt', {}, 'tasks completed'), h('dd', {}, `${inst.completedTaskCount}${inst.estimatedSteps ? ` of about ${inst.estimatedSteps}` : ''}`),
            h('dt', {}, 'started'), h('dd', {}, when(inst.createdAt)),
            h('dt', {}, 'updated'), h('dd', {}, when(inst.updatedAt)),
            h('dt', {}, 'finished'), h('dd', {}, when(inst.finishedAt)),
            h('dt', {}, 'priority'), h('dd', {}, inst.priority ?? 'each task\'s own'),
            inst.tags.length ? [h('dt', {}, 'tags'), h('dd', {}, inst.tags.join(', '))] : null,
            inst.parentId ? [h('dt', {}, 'parent'), h('dd', {}, link(instanceHref(inst.parentId), inst.parentId), ` (step ${inst.parentKey})`)] : null),
          inst.stalled.length ? h('div', { class: 'stalled' }, h('strong', {}, 'Not moving: '), h('ul', {}, inst.stalled.map((line) => h('li', {}, line)))) : null,
          inst.error ? h('section', {}, h('h2', {}, 'Error'), errorBlock(inst.error)) : null,
          h('section', { class: 'history' }, h('h2', {}, 'History'), historyList(data.history, data.historyFrom)))),
      h('section', {}, h('h2', {}, 'Tasks'), inst.tasks.length ? tasksTable(inst.tasks, data.history) : h('p', { class: 'muted' }, 'No task rows.')),
      h('div', { class: 'grid2' },
        h('section', {}, h('h2', {}, 'Input'), json(inst.input)),
        h('section', {}, h('h2', {}, 'Output'), json(inst.output))),
    );
  }

  return {
    el,
    refresh,
    onChange(ids) {
      // An instance page re-reads on any change ('*': a step of some instance moved) or when it ended.
      if (ids === '*' || ids.includes(id) || (latest && ids.includes(latest.instance.parentId))) refresh().catch((e) => showNotice(e.message));
    },
  };
}
