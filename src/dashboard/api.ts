/**
 * The dashboard's JSON API (what the page reads, and its actions):
 *
 *   GET  /api/config                    read-only flag, whether live updates run
 *   GET  /api/overview                  counts, throughput, backlog, workers, failures
 *   GET  /api/names                     registered workflow and task names
 *   GET  /api/instances?status=&name=&id=&from=&to=&limit=&cursor=
 *   GET  /api/instances/<id>            instance, tasks, graph, history
 *   POST /api/instances/<id>/<action>   cancel | pause | resume | retry | event
 *
 * Every parameter is checked before a query runs; a mistake is a 400 with a
 * message that says what was expected. Reads go through the store's bounded,
 * indexed statements (store/overview.ts, store/browse.ts); actions through the
 * client, so they are checked and recorded exactly as from code or the CLI.
 */
import type http from 'node:http';
import type { Client } from '../client/client.ts';
import { NotFoundError, ValidationError } from '../errors.ts';
import { browseInstances } from '../store/browse.ts';
import { getDefinition } from '../store/definitions.ts';
import { listHistory } from '../store/history.ts';
import { readyTaskStats } from '../store/metrics.ts';
import { definitionNames, heldLeases, recentFailures, statusCounts, throughput } from '../store/overview.ts';
import { listWorkers, liveWindowMs } from '../store/workers.ts';
import { WORKFLOW_STATUSES, type WorkflowStatus } from '../types.ts';
import { validateEventName, validateId, validateName } from '../workflow/names.ts';
import { HttpError, readJsonBody } from './http.ts';

export interface ApiContext {
  client: Client;
  readOnly: boolean;
  listening: () => boolean;
  /** Called after an action, so that open pages see it at once. */
  changed: (id: string) => void;
  /** How long an overview is reused (one query set serves every open page). */
  overviewTtlMs: number;
  /** Rows a list page or the overview reads at most from the created_at index. */
  scanLimit: number;
}

const LIST_PARAMS = ['status', 'name', 'id', 'from', 'to', 'limit', 'cursor'];
const ACTIONS = ['cancel', 'pause', 'resume', 'retry', 'event'] as const;
type Action = (typeof ACTIONS)[number];

function param(params: URLSearchParams, name: string): string | undefined {
  const all = params.getAll(name);
  if (all.length > 1) throw new ValidationError(`parameter "${name}" is given ${all.length} times; give it once`);
  const v = all[0]?.trim();
  return v === '' ? undefined : v;
}

function dateParam(params: URLSearchParams, name: string): Date | undefined {
  const v = param(params, name);
  if (v === undefined) return undefined;
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new ValidationError(`"${name}" must be a date and time such as 2026-12-05T10:00:00Z (got ${JSON.stringify(v)})`);
  return d;
}

/** The list's filters, checked: each mistake says what was expected. */
export function parseListQuery(params: URLSearchParams, scanLimit: number) {
  for (const key of new Set(params.keys())) {
    if (!LIST_PARAMS.includes(key)) throw new ValidationError(`unknown parameter "${key}" (the list takes ${LIST_PARAMS.join(', ')})`);
  }
  const statusText = param(params, 'status');
  const statuses = statusText?.split(',').map((s) => s.trim()).filter(Boolean) ?? [];
  for (const s of statuses) {
    if (!WORKFLOW_STATUSES.includes(s as WorkflowStatus)) throw new ValidationError(`status must be one of ${WORKFLOW_STATUSES.join(', ')} (got ${JSON.stringify(s)})`);
  }
  const name = param(params, 'name');
  if (name !== undefined) validateName('workflow or task', name);
  const id = param(params, 'id');
  if (id !== undefined) validateId(id, 'id prefix');
  const from = dateParam(params, 'from');
  const to = dateParam(params, 'to');
  if (from && to && from >= to) throw new ValidationError('"from" must be before "to"');
  const limitText = param(params, 'limit');
  const limit = limitText === undefined ? 50 : Number(limitText);
  if (!/^\d+$/.test(limitText ?? '50') || limit < 1 || limit > 200) throw new ValidationError(`limit must be a whole number from 1 to 200 (got ${JSON.stringify(limitText)})`);
  return {
    statuses: statuses as WorkflowStatus[],
    ...(name !== undefined ? { name } : {}),
    ...(id !== undefined ? { idPrefix: id } : {}),
    ...(from ? { from } : {}),
    ...(to ? { to } : {}),
    limit,
    cursor: param(params, 'cursor') ?? null,
    scanLimit,
  };
}

/** The overview, read at most once per `overviewTtlMs` whatever the number of open pages. */
export class OverviewCache {
  private value: { at: number; data: Promise<unknown> } | undefined;
  constructor(private readonly ctx: ApiContext) {}

  get(): Promise<unknown> {
    const now = Date.now();
    if (!this.value || now - this.value.at >= this.ctx.overviewTtlMs) {
      const data = this.read();
      this.value = { at: now, data };
      data.catch(() => (this.value = undefined));
    }
    return this.value.data;
  }

  private async read(): Promise<unknown> {
    const pool = this.ctx.client.pool;
    const live = liveWindowMs(this.ctx.client.config.claimTtlMs);
    const [counts, perMinute, backlog, workers, leases, failures] = await Promise.all([
      statusCounts(pool, { exactBelow: 100_000, timeoutMs: 5_000 }),
      throughput(pool, { scanLimit: this.ctx.scanLimit, timeoutMs: 5_000 }),
      readyTaskStats(pool, { names: 20, timeoutMs: 2_000 }).catch(() => null),
      listWorkers(pool, live),
      heldLeases(pool, { sample: 5, timeoutMs: 2_000 }),
      recentFailures(pool, { limit: 10, scanLimit: this.ctx.scanLimit, timeoutMs: 5_000 }),
    ]);
    const held = new Map(leases.map((l) => [l.workerId, l]));
    return {
      generatedAt: new Date(),
      counts,
      throughput: perMinute,
      backlog,
      workers: workers.map((w) => ({ ...w, leases: held.get(w.id) ?? { held: 0, sample: [], nextExpiry: null } })),
      // Leases of workers that no longer heartbeat: the reconciler will give them back.
      orphanLeases: leases.filter((l) => !workers.some((w) => w.id === l.workerId)),
      failures,
    };
  }
}

async function instancePage(ctx: ApiContext, id: string): Promise<unknown> {
  const view = await ctx.client.get(id);
  if (!view) throw new NotFoundError(`no workflow instance "${id}"`);
  const pool = ctx.client.pool;
  const [definition, history] = await Promise.all([
    getDefinition(pool, view.name, { hash: view.definitionHash }),
    listHistory(pool, id, { afterVersion: Math.max(0, view.version - 300) }),
  ]);
  return {
    instance: { ...view, state: undefined },
    graph: (definition?.graph as { root?: unknown } | undefined)?.root ?? null,
    history,
    historyFrom: Math.max(1, view.version - 299),
  };
}

async function act(ctx: ApiContext, id: string, action: Action, req: http.IncomingMessage): Promise<unknown> {
  if (ctx.readOnly) throw new HttpError(403, 'READ_ONLY', 'this dashboard is read-only (started with --read-only)');
  // A custom header cannot be sent across origins without a CORS preflight, which this server never grants.
  if (req.headers['x-baton-dashboard'] !== '1') throw new HttpError(403, 'CSRF', 'actions need the header x-baton-dashboard: 1');
  const body = await readJsonBody(req, 1024 * 1024);
  const c = ctx.client;
  let result: unknown;
  switch (action) {
    case 'cancel': {
      const reason = body.reason;
      if (reason !== undefined && (typeof reason !== 'string' || reason.length > 1000)) throw new ValidationError('reason must be text of at most 1000 characters');
      result = { previous: await c.cancel(id, { ...(reason ? { reason } : {}), requestedBy: 'dashboard' }) };
      break;
    }
    case 'pause':
      result = { previous: await c.pause(id, { requestedBy: 'dashboard' }) };
      break;
    case 'resume':
      result = { previous: await c.resume(id) };
      break;
    case 'retry': {
      const retried = await c.retry(id);
      result = { id: retried.id, was: retried.was, steps: retried.steps, children: retried.children };
      break;
    }
    case 'event': {
      const name = validateEventName(body.name);
      result = { eventId: await c.sendEvent(id, name, body.payload ?? null) };
      break;
    }
  }
  ctx.changed(id);
  return result;
}

/** Answers one /api request: the value to send as JSON (status 200), or throws a typed error. */
export async function handleApi(ctx: ApiContext, overview: OverviewCache, req: http.IncomingMessage, path: string, params: URLSearchParams): Promise<unknown> {
  const method = req.method ?? 'GET';
  const parts = path.split('/').slice(2); // '', 'api', ...
  let segments: string[];
  try {
    segments = parts.map((p) => decodeURIComponent(p));
  } catch {
    throw new ValidationError('the URL has a malformed %-escape');
  }
  const [head, id, action, ...rest] = segments;
  const get = method === 'GET' || method === 'HEAD';
  if (head === 'config' && segments.length === 1 && get) return { readOnly: ctx.readOnly, listening: ctx.listening() };
  if (head === 'overview' && segments.length === 1 && get) return overview.get();
  if (head === 'names' && segments.length === 1 && get) return definitionNames(ctx.client.pool);
  if (head === 'instances' && segments.length === 1 && get) return browseInstances(ctx.client.pool, parseListQuery(params, ctx.scanLimit));
  if (head === 'instances' && id !== undefined && action === undefined && get) return instancePage(ctx, validateId(id, 'instance id'));
  if (head === 'instances' && id !== undefined && action !== undefined && rest.length === 0 && ACTIONS.includes(action as Action)) {
    if (method !== 'POST') throw new HttpError(405, 'METHOD', `${action} is a POST`);
    return act(ctx, validateId(id, 'instance id'), action as Action, req);
  }
  if (!get && method !== 'POST') throw new HttpError(405, 'METHOD', `method ${method} is not allowed`);
  throw new HttpError(404, 'NOT_FOUND', `no API at ${path}`);
}
