// DOM and formatting helpers. Every text from the server goes in as a text node, never as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function ago(value) {
  if (!value) return '-';
  const ms = Date.now() - new Date(value).getTime();
  const abs = Math.abs(ms);
  const text = abs < 1000 ? 'now' : abs < 60_000 ? `${Math.round(abs / 1000)} s` : abs < 3_600_000 ? `${Math.round(abs / 60_000)} min` : abs < 86_400_000 ? `${(abs / 3_600_000).toFixed(1)} h` : `${(abs / 86_400_000).toFixed(1)} d`;
  if (text === 'now') return 'just now';
  return ms >= 0 ? `${text} ago` : `in ${text}`;
}

export function when(value) {
  if (!value) return '-';
  const d = new Date(value);
  return h('time', { datetime: d.toISOString(), title: d.toISOString() }, d.toLocaleString());
}

export function seconds(value) {
  if (value === null || value === undefined) return '-';
  if (value < 60) return `${value.toFixed(1)} s`;
  if (value < 3600) return `${(value / 60).toFixed(1)} min`;
  return `${(value / 3600).toFixed(1)} h`;
}

export function num(n) {
  return n === null || n === undefined ? '-' : Number(n).toLocaleString('en-US');
}

export function badge(status) {
  return h('span', { class: `badge st-${status}`, 'data-status': status }, status);
}

export function link(href, ...children) {
  return h('a', { href, 'data-link': '' }, ...children);
}

export function instanceHref(id) {
  return `/instances/${encodeURIComponent(id)}`;
}

export function errorBlock(error) {
  if (!error) return null;
  const message = typeof error === 'object' ? `${error.name ? `${error.name}: ` : ''}${error.message ?? JSON.stringify(error)}` : String(error);
  const stack = typeof error === 'object' && error.stack ? String(error.stack) : null;
  return stack
    ? h('details', { class: 'error' }, h('summary', {}, message), h('pre', {}, stack))
    : h('div', { class: 'error' }, message);
}

export function json(value) {
  return h('pre', { class: 'json' }, value === undefined ? 'undefined' : JSON.stringify(value, null, 2));
}

/** replaceChildren, skipping null and false (the DOM's own would write "null"). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}
