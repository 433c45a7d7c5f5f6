/** Printing for people: tables, durations, progress lines. Pure functions of their input. */
import type { InstanceView } from '../client/client.ts';
import type { DefinitionSummary } from '../store/definitions.ts';
import type { HistoryEntry } from '../store/history.ts';
import type { InstanceSummary } from '../store/instances.ts';

export function duration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m${String(Math.floor((ms % 60_000) / 1_000)).padStart(2, '0')}s`;
  return `${Math.floor(ms / 3_600_000)}h${String(Math.floor((ms % 3_600_000) / 60_000)).padStart(2, '0')}m`;
}

/** A value as text: objects as JSON (not "[object Object]"), null and undefined as nothing. */
function show(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value as string | number | boolean | bigint | symbol);
}

/** Characters that would move the terminal cursor or hide text are shown escaped. */
export function safe(text: unknown): string {
  // eslint-disable-next-line no-control-regex
  return show(text).replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function listTable(items: InstanceSummary[], now = Date.now()): string {
  return table(
    ['ID', 'WORKFLOW', 'STATUS', 'STEPS', 'CURRENT', 'AGE'],
    items.map((i) => [
      safe(i.id),
      safe(i.name),
      i.status,
      String(i.completedTaskCount),
      safe(i.currentStep ?? ''),
      duration(now - i.createdAt.getTime()),
    ]),
  );
}

/** What is happening now: the running steps (with their progress), else what waits. */
export function currentSteps(view: InstanceView): string {
  const running = view.tasks.filter((t) => t.status === 'running');
  if (running.length) {
    return running
      .map((t) => `${safe(t.name)}${t.progress !== null && t.progress < 100 ? ` ${Math.round(t.progress)}%` : ''}${t.progressMessage ? ` (${safe(t.progressMessage)})` : ''}`)
      .join(', ');
  }
  const waiting = view.tasks.filter((t) => t.status === 'ready' || t.status === 'queued' || t.status === 'waiting');
  return waiting
    .map((t) => (t.kind === 'sleep' ? 'sleeping' : t.kind === 'event' ? `waiting for "${safe(t.name)}"${t.eventKey !== null ? ` with key "${safe(t.eventKey)}"` : ''}` : t.kind === 'child' ? `child ${safe(t.name)}` : `${safe(t.name)} (${t.status === 'queued' ? 'held by its limit' : 'queued'})`))
    .join(', ');
}

/** One progress line: "order-1  running  3/7 steps  ship 50%, notify-customer  12.3s". */
export function progressLine(view: InstanceView, now = Date.now()): string {
  const total = view.estimatedSteps ? `/${view.estimatedSteps}` : '';
  const elapsed = duration((view.finishedAt ?? new Date(now)).getTime() - view.createdAt.getTime());
  const parts = [safe(view.id), view.status, `${view.completedTaskCount}${total} steps`];
  const current = currentSteps(view);
  if (current) parts.push(current);
  if (view.waitingForDefinition) parts.push(`waiting for a worker with ${safe(view.waitingForDefinition)}`);
  else if (view.stalled.length) parts.push(`stalled: ${safe(view.stalled[0])}${view.stalled.length > 1 ? ` (+${view.stalled.length - 1})` : ''}`);
  parts.push(elapsed);
  return parts.join('  ');
}

/**
 * A task's attempts ("1/5"); for a sleep, an event wait or a child, what it waits
 * for instead (their attempt count is an internal limit, not something that is retried).
 */
function attemptsOrWait(t: InstanceView['tasks'][number]): string {
  const done = t.status === 'completed' || t.status === 'failed' || t.status === 'cancelled';
  const at = t.availableAt ? t.availableAt.toISOString() : null;
  switch (t.kind) {
    case 'sleep':
      return at ? `${done ? 'slept' : 'sleeps'} until ${at}` : done ? 'slept' : 'sleeps';
    case 'event':
      return `${done ? 'waited' : 'waits'} for event "${safe(t.name)}"${t.eventKey !== null ? ` with key "${safe(t.eventKey)}"` : ''}${!done && at ? ` (gives up at ${at})` : ''}`;
    case 'child':
      return `${done ? 'waited' : 'waits'} for child workflow ${safe(t.name)}`;
    case 'branch':
    case 'compensate':
      return '-';
    default:
      return `${t.attempts}/${t.maxAttempts}`;
  }
}

export function statusText(view: InstanceView): string {
  const lines = [
    `id:        ${safe(view.id)}`,
    `workflow:  ${safe(view.name)}${(view.definitionVersion ?? 1) !== 1 ? ` version ${view.definitionVersion}` : ''} (definition ${view.definitionHash})`,
    `status:    ${view.status}${view.waitingForDefinition ? `, waiting for a worker with ${safe(view.waitingForDefinition)}` : ''}`,
    `steps:     ${view.completedTaskCount}${view.estimatedSteps ? ` of ~${view.estimatedSteps}` : ''} done${currentSteps(view) ? `; now: ${currentSteps(view)}` : ''}`,
    `created:   ${view.createdAt.toISOString()}`,
  ];
  if (view.finishedAt) lines.push(`finished:  ${view.finishedAt.toISOString()} (${duration(view.finishedAt.getTime() - view.createdAt.getTime())})`);
  if (view.priority !== null) lines.push(`priority:  ${view.priority}`);
  if (view.tags.length) lines.push(`tags:      ${view.tags.map(safe).join(', ')}`);
  if (view.parentId) lines.push(`parent:    ${safe(view.parentId)} (step ${safe(view.parentKey)})`);
  if (view.status === 'completed') lines.push(`output:    ${safe(JSON.stringify(view.output))}`);
  if (view.error) lines.push(`error:     ${safe((view.error as { message?: string }).message ?? JSON.stringify(view.error))}`);
  for (const [i, why] of view.stalled.entries()) lines.push(`${i === 0 ? 'stalled:' : ''}`.padEnd(11) + safe(why));
  lines.push('', table(
    ['STEP', 'KIND', 'NAME', 'STATUS', 'ATTEMPTS / WAITS FOR', 'LAST ERROR'],
    view.tasks.map((t) => [
      safe(t.taskKey),
      t.kind,
      safe(t.name),
      t.paused ? `${t.status} (paused)` : t.status,
      attemptsOrWait(t),
      safe(((t.lastError as { message?: string } | null)?.message ?? '').split('\n')[0]),
    ]),
  ));
  return lines.join('\n');
}

export function historyTable(entries: HistoryEntry[]): string {
  return table(
    ['VERSION', 'AT', 'KIND', 'STEP', 'STATUS', 'DETAIL'],
    entries.map((h) => {
      const d = h.detail as Record<string, unknown>;
      const extra = [
        d.attempt !== undefined ? `attempt ${show(d.attempt)}` : '',
        d.worker ? `by ${safe(d.worker)}` : '',
        Array.isArray(d.scheduled) && d.scheduled.length ? `-> ${d.scheduled.map(safe).join(', ')}` : '',
        d.error ? `error: ${safe(((d.error as { message?: string }).message ?? '').split('\n')[0])}` : '',
        d.retryInMs !== undefined ? `retry in ${duration(Number(d.retryInMs))}` : '',
        Array.isArray(d.steps) && d.steps.length ? `runs again: ${d.steps.map(safe).join(', ')}` : '',
        Array.isArray(d.children) && d.children.length ? `with children ${d.children.map(safe).join(', ')}` : '',
        d.via ? `retried with ${safe(d.via)}` : '',
      ].filter(Boolean);
      return [String(h.version), h.at.toISOString(), h.kind, safe(d.key ?? ''), show(d.status), extra.join('; ')];
    }),
  );
}

/** `baton definitions`: one row per shape; a shape with instances in flight and no live worker is marked. */
export function definitionsTable(defs: DefinitionSummary[]): string {
  return table(
    ['NAME', 'KIND', 'VERSION', 'HASH', 'IN FLIGHT', 'LIVE WORKERS', 'STARTS BY NAME'],
    defs.map((d) => [
      safe(d.name),
      d.kind,
      String(d.version),
      d.hash,
      String(d.inFlight),
      d.inFlight > 0 && d.liveWorkers === 0 ? '0 (stranded: no worker runs them)' : String(d.liveWorkers),
      d.startsByName ? 'yes' : '',
    ]),
  );
}
