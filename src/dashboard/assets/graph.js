// The workflow drawn as SVG from its definition's shape (the `graph.root` a worker registered),
// top to bottom, each step coloured by the state of its task row.
//
// Task rows are keyed by activation key (src/workflow/graph.ts): seq index "2", parallel branch "b0",
// branch case "c:name" ("c:*" for otherwise), loop iteration "i3". A step of the drawing stands for every
// iteration of a loop, so its key has "i*" where the row's has "i<n>"; it shows the newest row's state.
import { s } from './dom.js';

const LEAF_W = 176, LEAF_H = 46, GAP = 26, BAR = 5, PAD = 16;

export function shapeKey(root, taskKey) {
  if (taskKey === '') return '';
  let node = root;
  const out = [];
  for (const seg of taskKey.split('/')) {
    if (!node) {
      out.push(seg);
      continue;
    }
    switch (node.t) {
      case 'seq': out.push(seg); node = node.steps[Number(seg)]; break;
      case 'parallel': out.push(seg); node = node.branches[Number(seg.slice(1))]; break;
      case 'branch': out.push(seg); node = seg === 'c:*' ? node.otherwise : node.cases[seg.slice(2)]; break;
      case 'loop': out.push('i*'); node = node.body; break;
      default: out.push(seg); node = undefined;
    }
  }
  return out.join('/');
}

const join = (parent, seg) => (parent === '' ? seg : `${parent}/${seg}`);

function duration(ms) {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

function cut(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

function arrow(x1, y1, x2, y2) {
  const d = y2 - y1 > 0 && x1 !== x2 ? `M${x1},${y1} C${x1},${(y1 + y2) / 2} ${x2},${(y1 + y2) / 2} ${x2},${y2}` : `M${x1},${y1} L${x2},${y2}`;
  return s('path', { d, class: 'edge', 'marker-end': 'url(#arrow)' });
}

function leaf(node, key, states, label, kind) {
  let st = states.get(key);
  // A branch has no row of its own: it was decided once a step of one of its cases has one.
  if (!st && node.t === 'branch' && [...states.keys()].some((k) => k.startsWith(`${key}/`))) st = { status: 'completed', attempts: 1, iterations: 1 };
  return {
    w: LEAF_W,
    h: LEAF_H,
    draw(x, y) {
      const status = st?.status ?? 'none';
      const sub = st ? `${kind} · ${status}${st.iterations > 1 ? ` · ${st.iterations} runs` : ''}${st.attempts > 1 ? ` · ${st.attempts} attempts` : ''}` : `${kind} · not reached`;
      return s('g', { class: `node st-${status}`, 'data-key': key, 'data-status': status, 'data-task': st?.taskKey, tabindex: 0 },
        s('title', {}, `${label}\nstep ${key || '(root)'}\n${sub}`),
        s('rect', { x, y, width: LEAF_W, height: LEAF_H, rx: 7 }),
        s('text', { x: x + LEAF_W / 2, y: y + 19, class: 'label' }, cut(label, 24)),
        s('text', { x: x + LEAF_W / 2, y: y + 35, class: 'sub' }, cut(sub, 30)));
    },
  };
}

function layout(node, key, states) {
  switch (node.t) {
    case 'task': return leaf(node, key, states, node.name, 'task');
    case 'sleep': return leaf(node, key, states, `sleep ${duration(node.ms)}`, 'sleep');
    case 'event': return leaf(node, key, states, `wait for "${node.name}"`, 'event');
    case 'child': return leaf(node, key, states, node.workflow, 'child workflow');
    case 'seq': {
      const kids = node.steps.map((n, i) => layout(n, join(key, String(i)), states));
      const w = Math.max(LEAF_W, ...kids.map((k) => k.w));
      const h = kids.reduce((a, k) => a + k.h, 0) + GAP * Math.max(0, kids.length - 1);
      return {
        w, h,
        draw(x, y) {
          const out = [];
          let top = y;
          kids.forEach((k, i) => {
            if (i > 0) out.push(arrow(x + w / 2, top - GAP, x + w / 2, top));
            out.push(k.draw(x + (w - k.w) / 2, top));
            top += k.h + GAP;
          });
          return s('g', {}, out);
        },
      };
    }
    case 'parallel':
    case 'branch': {
      const isBranch = node.t === 'branch';
      const entries = isBranch
        ? [...Object.entries(node.cases).map(([c, n]) => [c, n, `c:${c}`]), ...(node.otherwise ? [['otherwise', node.otherwise, 'c:*']] : [])]
        : node.branches.map((n, i) => [null, n, `b${i}`]);
      const kids = entries.map(([label, n, seg]) => ({ label, box: layout(n, join(key, seg), states) }));
      const head = isBranch ? leaf(node, key, states, 'branch', 'choice') : null;
      const inner = kids.reduce((a, k) => a + k.box.w, 0) + GAP * Math.max(0, kids.length - 1);
      const rule = !isBranch && node.join
        ? `${node.join === 'any' ? 'any 1' : `quorum ${node.join.quorum}`} of ${kids.length}, rest ${node.rest ?? 'cancel'}`
        : null;
      // Room for the rule's label right of the join bar (about 6 px a character at 11 px), kept centred.
      const w = Math.max(inner + (rule ? 2 * (rule.length * 6 + 20) : 0), head ? head.w : 0);
      const top = (head ? head.h + GAP : 0) + BAR + GAP + (isBranch ? 14 : 0);
      const tallest = Math.max(0, ...kids.map((k) => k.box.h));
      const h = top + tallest + GAP + BAR;
      return {
        w, h,
        draw(x, y) {
          const out = [];
          const cx = x + w / 2;
          if (head) {
            out.push(head.draw(cx - head.w / 2, y));
            out.push(arrow(cx, y + head.h, cx, y + head.h + GAP));
          }
          const forkY = y + (head ? head.h + GAP : 0);
          const joinY = y + h - BAR;
          let left = x + (w - inner) / 2;
          const centers = [];
          for (const k of kids) {
            const kx = left + k.box.w / 2;
            centers.push(kx);
            const ky = forkY + BAR + GAP + (isBranch ? 14 : 0);
            out.push(arrow(kx, forkY + BAR, kx, ky));
            if (k.label !== null) out.push(s('text', { x: kx + 4, y: ky - 6, class: 'case' }, cut(k.label, 20)));
            out.push(k.box.draw(left, ky));
            out.push(s('path', { d: `M${kx},${ky + k.box.h} L${kx},${joinY}`, class: 'edge' }));
            left += k.box.w + GAP;
          }
          const span = centers.length ? [Math.min(...centers), Math.max(...centers)] : [cx, cx];
          out.push(s('rect', { x: span[0] - 8, y: forkY, width: span[1] - span[0] + 16, height: BAR, class: isBranch ? 'bar choice' : 'bar' }));
          out.push(s('rect', { x: span[0] - 8, y: joinY, width: span[1] - span[0] + 16, height: BAR, class: isBranch ? 'bar choice' : 'bar' }));
          // An any-of or quorum join says when it fires and what becomes of the branches still out.
          if (rule) out.push(s('text', { x: span[1] + 12, y: joinY + BAR, class: 'case join-rule' }, rule));
          return s('g', {}, out);
        },
      };
    }
    case 'loop': {
      const body = layout(node.body, join(key, 'i*'), states);
      const w = body.w + PAD * 2 + 10, h = body.h + PAD * 2 + 12;
      return {
        w, h,
        draw(x, y) {
          return s('g', { class: 'loop' },
            s('rect', { x, y, width: w, height: h, rx: 10, class: 'frame' }),
            s('text', { x: x + 8, y: y + 14, class: 'case' }, `loop, at most ${node.max}${node.until ? ', until …' : ''}`),
            s('path', { d: `M${x + w - 8},${y + h - PAD} L${x + w - 8},${y + PAD + 12}`, class: 'edge back', 'marker-end': 'url(#arrow)' }),
            body.draw(x + PAD, y + PAD + 12));
        },
      };
    }
    default:
      return leaf(node, key, states, node.t ?? '?', 'step');
  }
}

/** States by drawing key: the newest row's status, how many iterations ran, its attempts. */
export function stepStates(root, tasks) {
  const states = new Map();
  for (const t of tasks) {
    const key = shapeKey(root, t.taskKey);
    const prev = states.get(key);
    states.set(key, { status: t.status, attempts: t.attempts, iterations: (prev?.iterations ?? 0) + 1, taskKey: t.taskKey });
  }
  return states;
}

export function drawGraph(root, tasks) {
  // A one-task job's root is the task itself: its row's key is its step index in a one-step sequence.
  const shape = root.t === 'seq' ? root : { t: 'seq', steps: [root] };
  const box = layout(shape, '', stepStates(shape, tasks));
  const m = 12;
  return s('svg', { class: 'graph', viewBox: `0 0 ${box.w + m * 2} ${box.h + m * 2}`, width: box.w + m * 2, height: box.h + m * 2, role: 'img', 'aria-label': 'workflow graph' },
    s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }))),
    box.draw(m, m));
}
