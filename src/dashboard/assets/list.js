// The instance list: filters in the URL (shareable), keyset pages ("Load more"), live refresh of the first page.
import { api, navigate, showNotice } from './app.js';
import { ago, badge, fill, h, instanceHref, link, num } from './dom.js';

const STATUSES = ['pending', 'running', 'paused', 'completed', 'failed', 'cancelled', 'compensated'];
const FILTERS = ['status', 'name', 'id', 'from', 'to'];

// <input type=datetime-local> speaks local time without a zone; the API takes ISO instants.
function toLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function renderList(params) {
  const filter = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) ?? '']));
  const names = h('datalist', { id: 'names' });
  const form = h(
    'form',
    { class: 'filters', id: 'filters' },
    h('label', {}, 'status ', h('select', { name: 'status' }, h('option', { value: '' }, 'any'), STATUSES.map((st) => h('option', { value: st, selected: filter.status === st }, st)))),
    h('label', {}, 'name ', h('input', { name: 'name', list: 'names', value: filter.name, placeholder: 'workflow or task', size: 18 })),
    h('label', {}, 'id prefix ', h('input', { name: 'id', value: filter.id, placeholder: 'order-', size: 16 })),
    h('label', {}, 'started from ', h('input', { name: 'from', type: 'datetime-local', value: toLocalInput(filter.from) })),
    h('label', {}, 'to ', h('input', { name: 'to', type: 'datetime-local', value: toLocalInput(filter.to) })),
    h('button', { type: 'submit' }, 'Filter'),
    h('a', { href: '/instances', 'data-link': '', class: 'small' }, 'clear'),
    names,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) {
      if (!v) continue;
      if (k === 'from' || k === 'to') {
        const d = new Date(v);
        q.set(k, Number.isNaN(d.getTime()) ? v : d.toISOString());
      } else q.set(k, v);
    }
    navigate(`/instances${q.size ? `?${q}` : ''}`);
  });
  api('/api/names').then((rows) => names.replaceChildren(...[...new Set(rows.map((r) => r.name))].map((n) => h('option', { value: n }))), () => undefined);

  const tbody = h('tbody', {});
  const more = h('div', { class: 'more' });
  const el = h(
    'div',
    { class: 'list' },
    h('h1', {}, 'Instances'),
    form,
    h('table', { class: 'instances' }, h('thead', {}, h('tr', {}, ['id', 'workflow', 'status', 'step', 'tasks done', 'started', 'updated'].map((c) => h('th', {}, c)))), tbody),
    more,
  );
  const query = new URLSearchParams();
  for (const k of FILTERS) if (filter[k]) query.set(k, filter[k]);
  let pages = 0;

  const row = (i) =>
    h('tr', { 'data-id': i.id },
      h('td', { class: 'mono' }, link(instanceHref(i.id), i.id)),
      h('td', {}, i.name),
      h('td', {}, badge(i.status)),
      h('td', {}, i.currentStep ?? '-'),
      h('td', { class: 'r' }, num(i.completedTaskCount)),
      h('td', {}, ago(i.createdAt)),
      h('td', {}, ago(i.finishedAt ?? i.updatedAt)));

  async function load(cursor) {
    const q = new URLSearchParams(query);
    if (cursor) q.set('cursor', cursor);
    const page = await api(`/api/instances?${q}`);
    if (!cursor) tbody.replaceChildren();
    tbody.append(...page.items.map(row));
    pages = cursor ? pages + 1 : 1;
    const found = tbody.children.length;
    fill(more,
      page.partial
        ? h('span', { class: 'muted small' }, `${found ? '' : 'No match yet. '}Searched back to ${new Date(page.scannedTo).toLocaleString()}. `)
        : found === 0
          ? h('p', { class: 'muted' }, 'No instance matches.')
          : null,
      // The list walks by start time; an exact id is one lookup away.
      filter.id && !cursor ? h('span', { class: 'small' }, link(instanceHref(filter.id), `open instance "${filter.id}"`)) : null,
      page.next ? h('button', { type: 'button', id: 'load-more', onclick: () => load(page.next).catch((e) => showNotice(e.message)) }, page.partial ? 'Search older' : 'Load more') : null,
    );
  }

  return {
    el,
    refresh: () => load(null),
    // Live: the first page follows changes; once more pages are loaded, rows are not moved under the reader.
    onChange() {
      if (pages <= 1) load(null).catch((e) => showNotice(e.message));
    },
  };
}
