/**
 * The client: what applications use to start work and look at it.
 *
 * Every method checks its input first (typed errors, nothing written on bad
 * input), then calls the store. Starts go through the SQL API function, so an
 * instance started here is indistinguishable from one started in SQL.
 */
import type pg from 'pg';
import { loadConfig, type BatonConfig } from '../config.ts';
import { encodePayload, encodePayloadText, jsonCodec, type Codec } from '../codec.ts';
import { Listener } from '../db/listen.ts';
import { openBaton, type OpenedDatabase } from '../db/open.ts';
import { NotFoundError, TimeoutError, ValidationError, workflowError, type SerializedError } from '../errors.ts';
import { createLogger } from '../log.ts';
import { producerSpan, TracerRef } from '../tracing.ts';
import { getDefinition, listDefinitions, registerDefinitions, type DefinitionSummary } from '../store/definitions.ts';
import { publishEvent, sendEvent } from '../store/events.ts';
import { listHistory, type HistoryEntry } from '../store/history.ts';
import { listInstances, loadInstance, startInstance, startMany, type InstanceSummary, type ListFilter, type Page } from '../store/instances.ts';
import { findAvailableTasks, type AvailableTask } from '../store/claims.ts';
import { retryInstance, retryMatching, type RetryManyResult } from '../store/retry.ts';
import { listSchedules, type ScheduleView } from '../store/schedules.ts';
import { checkAndCancel, checkAndPause, unpause } from '../store/signals.ts';
import { listTasks } from '../store/tasks.ts';
import { listWorkers, liveWindowMs } from '../store/workers.ts';
import { isFinished, ON_CONFLICT, type DefinitionKind, type Executor, type Logger, type WorkflowStatus } from '../types.ts';
import { isWorkflow, taskWorkflow, withDescendants, type Workflow } from '../workflow/builder.ts';
import { definitionRecord } from '../workflow/definition.ts';
import { validateEventKey, validateEventRetention } from '../workflow/keyed-events.ts';
import { normalizeTags, validateEventName, validateId, validateName, validatePriority } from '../workflow/names.ts';
import { startLimitKey } from '../workflow/start-keys.ts';
import { isTask, parseWith, type Task } from '../workflow/task.ts';
import { stateAt, type RebuiltState } from './history.ts';
import type { ClientOptions, InstanceView, Retried, StartedMany, StartManyOptions, StartOptions, Started } from './options.ts';
import * as more from './features.ts';
import { startManyLimitKeys } from './limits.ts';
import { checkIds, retryFilter, type RetryManyOptions } from './retry.ts';
import { toExecutor, type TransactionLike } from './tx.ts';

export type { ClientOptions, InstanceView, Retried, StartedMany, StartManyOptions, StartOptions, Started } from './options.ts';

export class Client {
  private readonly codec: Codec;
  private readonly registered = new Set<string>();
  private listener: Listener | undefined;
  private readonly waiters = new Map<string, Set<() => void>>();
  private closing: Promise<void> | undefined;
  private readonly tracer = new TracerRef();

  /** @internal */
  constructor(
    private readonly db: OpenedDatabase,
    readonly config: BatonConfig,
    private readonly log: Logger,
    codec: Codec,
  ) {
    this.codec = codec;
  }

  /** The pool this client uses (for transactions of your own that call the store). */
  get pool(): pg.Pool {
    return this.db.pool;
  }

  /** @internal The URL this client connected with (undefined when given a pool): for a LISTEN connection of one's own. */
  get url(): string | undefined {
    return this.db.url;
  }

  private checkStart(options: StartOptions): void {
    if (options === null || typeof options !== 'object') throw new ValidationError('options must be an object');
    if (options.id !== undefined) validateId(options.id);
    if (options.priority !== undefined) validatePriority(options.priority);
    if (options.tags !== undefined) normalizeTags(options.tags);
    if (options.onConflict !== undefined && !ON_CONFLICT.includes(options.onConflict)) {
      throw new ValidationError(`onConflict must be one of ${ON_CONFLICT.join(', ')} (got ${JSON.stringify(options.onConflict)})`);
    }
    if (options.runAt !== undefined && (!(options.runAt instanceof Date) || Number.isNaN(options.runAt.getTime()))) {
      throw new ValidationError('runAt must be a valid Date');
    }
    if (options.limitKey !== undefined) validateId(options.limitKey, 'limitKey');
  }

  private async ensureRegistered(workflow: Workflow): Promise<void> {
    const missing = withDescendants([workflow]).filter((w) => !this.registered.has(w.hash));
    if (missing.length === 0) return;
    await registerDefinitions(this.db.pool, missing.map(definitionRecord));
    for (const w of missing) this.registered.add(w.hash);
  }

  private async startAny<O>(
    kind: DefinitionKind,
    target: Workflow | string,
    input: unknown,
    options: StartOptions,
  ): Promise<Started<O>> {
    this.checkStart(options);
    const name = typeof target === 'string' ? validateName(kind, target) : target.name;
    if (typeof target !== 'string' && target.parseInput) input = parseWith(target.parseInput, input, `${kind} "${name}"`);
    const limitKey = options.limitKey ?? (typeof target === 'string' ? null : startLimitKey(target, input, `${kind} "${name}"`));
    const encoded = encodePayload(this.codec, input, 'input', this.config.maxPayloadBytes);
    const ex: Executor = options.tx ? toExecutor(options.tx) : this.db.pool;
    if (typeof target !== 'string') await this.ensureRegistered(target);
    const tags = normalizeTags(options.tags ?? []);
    const hash = typeof target === 'string' ? null : target.hash;
    const { id, created } = await producerSpan(
      this.tracer,
      kind === 'task' ? 'enqueue' : 'start',
      name,
      null,
      (trace) => startInstance(ex, { name, kind, input: encoded, id: options.id ?? null, priority: options.priority ?? null, tags, onConflict: options.onConflict ?? 'fail', hash, runAt: options.runAt ?? null, trace, limitKey }),
      (r) => r.id,
    );
    return { id, created, result: (o) => this.result<O>(id, o) };
  }

  /** Start an instance of a workflow (the definition, or a registered name). */
  start<I, O>(workflow: Workflow<I, O>, input: I, options?: StartOptions): Promise<Started<O>>;
  start(workflow: string, input?: unknown, options?: StartOptions): Promise<Started<unknown>>;
  start(workflow: Workflow | string, input: unknown = null, options: StartOptions = {}): Promise<Started<unknown>> {
    if (typeof workflow !== 'string' && !isWorkflow(workflow)) {
      return Promise.reject(new ValidationError('start() takes a built workflow or the name of a registered one'));
    }
    return this.startAny('workflow', workflow, input, options);
  }

  /** Enqueue a one-task job (the task, or the name of a task a worker registered). */
  enqueue<I, O>(task: Task<I, O>, input: I, options?: StartOptions): Promise<Started<O>>;
  enqueue(task: string, input?: unknown, options?: StartOptions): Promise<Started<unknown>>;
  enqueue(task: Task | string, input: unknown = null, options: StartOptions = {}): Promise<Started<unknown>> {
    if (typeof task !== 'string' && !isTask(task)) return Promise.reject(new ValidationError('enqueue() takes a task or the name of a registered one'));
    return this.startAny('task', typeof task === 'string' ? task : taskWorkflow(task), input, options);
  }

  /**
   * Start many instances of one workflow in one round trip, in input order: their ids (generated), or,
   * with `ids`, each item's id and whether it was created.
   */
  startMany<I>(workflow: Workflow<I, unknown> | string, inputs: I[], options: StartManyOptions & { ids: StartManyOptions['ids'] & {} }): Promise<StartedMany[]>;
  startMany<I>(workflow: Workflow<I, unknown> | string, inputs: I[], options?: Omit<StartManyOptions, 'ids'>): Promise<string[]>;
  startMany(workflow: Workflow | string, inputs: unknown[], options: StartManyOptions = {}): Promise<string[] | StartedMany[]> {
    return this.startManyAny('workflow', workflow, inputs, options);
  }

  /** Enqueue many one-task jobs in one round trip (ids as in startMany). */
  enqueueMany<I>(task: Task<I, unknown> | string, inputs: I[], options: StartManyOptions & { ids: StartManyOptions['ids'] & {} }): Promise<StartedMany[]>;
  enqueueMany<I>(task: Task<I, unknown> | string, inputs: I[], options?: Omit<StartManyOptions, 'ids'>): Promise<string[]>;
  enqueueMany(task: Task | string, inputs: unknown[], options: StartManyOptions = {}): Promise<string[] | StartedMany[]> {
    if (typeof task !== 'string' && !isTask(task)) return Promise.reject(new ValidationError('enqueueMany() takes a task or the name of a registered one'));
    return this.startManyAny('task', typeof task === 'string' ? task : taskWorkflow(task), inputs, options);
  }

  private async startManyAny(kind: DefinitionKind, target: Workflow | string, inputs: unknown[], options: StartManyOptions): Promise<string[] | StartedMany[]> {
    if (typeof target !== 'string' && !isWorkflow(target)) throw new ValidationError('startMany() takes a built workflow or the name of a registered one');
    if (!Array.isArray(inputs)) throw new ValidationError('inputs must be an array');
    this.checkStart(options);
    const ids = options.ids === undefined ? null : checkIds(options.ids, inputs.length);
    const name = typeof target === 'string' ? validateName(kind, target) : target.name;
    const parse = typeof target === 'string' ? undefined : target.parseInput;
    if (parse) inputs = inputs.map((input, i) => parseWith(parse, input, `${kind} "${name}" inputs[${i}]`));
    const limitKeys = startManyLimitKeys(target, inputs, options.limitKeys, `${kind} "${name}"`);
    const encoded = inputs.map((input, i) => encodePayloadText(this.codec, input, `inputs[${i}]`, this.config.maxPayloadBytes));
    if (encoded.length === 0) return [];
    if (typeof target !== 'string') await this.ensureRegistered(target);
    const ex = options.tx ? toExecutor(options.tx) : this.db.pool;
    const tags = normalizeTags(options.tags ?? []);
    const hash = typeof target === 'string' ? null : target.hash;
    const started = await producerSpan(
      this.tracer,
      kind === 'task' ? 'enqueue' : 'start',
      name,
      encoded.length,
      (trace) => startMany(ex, { name, kind, inputs: encoded, priority: options.priority ?? null, tags, hash, ids, onConflict: options.onConflict ?? 'fail', trace, limitKeys }),
      () => null,
    );
    return ids ? started : started.map((s) => s.id);
  }

  /**
   * Run a failed or cancelled instance again from the steps that failed (or were cancelled): completed
   * steps keep their outputs, attempts start fresh, its failed or cancelled child instances are retried
   * with it, and history records the retry. NotFoundError when there is no such instance;
   * InvalidStateError (nothing written) when it is running, paused or completed, is a child (retry its
   * parent), or failed outside any step (a branch or loop error: no step to run again).
   */
  async retry<O = unknown>(id: string): Promise<Retried<O>> {
    validateId(id);
    const retried = await retryInstance(this.db.pool, id);
    return { ...retried, result: (o) => this.result<O>(id, o) };
  }

  /** Retry every top-level instance with the given status (and name, and end time), each on its own; those that cannot be are skipped with why. */
  async retryMany(options: RetryManyOptions): Promise<RetryManyResult> {
    return retryMatching(this.db.pool, retryFilter(options));
  }

  /**
   * Cancel an instance and its running children; running tasks see their AbortSignal fire. Returns the status it had.
   * `compensate: true`: the forward work stops the same way, then the compensations of the steps that completed
   * run, latest first, and the instance ends `compensated` (`cancelled` when nothing needed undoing); asking again
   * meanwhile changes nothing.
   */
  async cancel(id: string, options: { reason?: string; requestedBy?: string; compensate?: boolean } = {}): Promise<WorkflowStatus> {
    validateId(id);
    if (options.compensate !== undefined && typeof options.compensate !== 'boolean') {
      throw new ValidationError(`cancel: compensate must be true or false (got ${JSON.stringify(options.compensate)})`);
    }
    return checkAndCancel(this.db.pool, id, {
      reason: options.reason ?? null,
      requestedBy: options.requestedBy ?? null,
      compensate: options.compensate === true,
    });
  }

  /** Pause: running tasks finish, nothing else of the instance is claimed until resume. */
  async pause(id: string, options: { requestedBy?: string } = {}): Promise<WorkflowStatus> {
    validateId(id);
    return checkAndPause(this.db.pool, id, options.requestedBy ?? null);
  }

  async resume(id: string): Promise<WorkflowStatus> {
    validateId(id);
    return unpause(this.db.pool, id);
  }

  /** Send an event; buffered (FIFO per name) until a waitForEvent step takes it. Returns the event id. */
  async sendEvent(id: string, name: string, payload: unknown = null): Promise<number> {
    validateId(id);
    validateEventName(name);
    const encoded = encodePayload(this.codec, payload, 'event payload', this.config.maxPayloadBytes);
    return sendEvent(this.db.pool, id, name, encoded);
  }

  /**
   * Publish a keyed event: the instance waiting on this name and key (waitForEvent(name, { key }))
   * takes it, one waiter per event, FIFO; with none waiting yet it is buffered for `retentionMs`
   * (default: BATON_EVENT_RETENTION_MS, 7 days) and then dropped. With `tx` (a pg client or a Drizzle
   * transaction), the event is published if and when that transaction commits. Returns the event id.
   */
  async publish(name: string, key: string, payload: unknown = null, options: { retentionMs?: number; tx?: TransactionLike } = {}): Promise<number> {
    validateEventName(name);
    validateEventKey(key);
    const retentionMs = options.retentionMs === undefined ? this.config.eventRetentionMs : validateEventRetention(options.retentionMs);
    const encoded = encodePayload(this.codec, payload, 'event payload', this.config.maxPayloadBytes);
    return publishEvent(options.tx ? toExecutor(options.tx) : this.db.pool, name, key, encoded, retentionMs);
  }

  /** Status, metadata and every task's state, attempts and last error; null when there is no such instance. */
  async get(id: string): Promise<InstanceView | null> {
    validateId(id);
    const row = await loadInstance(this.db.pool, id);
    if (!row) return null;
    const tasks = await listTasks(this.db.pool, id);
    const def = await getDefinition(this.db.pool, row.name, { hash: row.definitionHash });
    const estimatedSteps = (def?.graph as { estimatedSteps?: number } | undefined)?.estimatedSteps ?? null;
    const definitionVersion = def?.version ?? null;
    let waitingForDefinition: string | null = null;
    const stalled: string[] = [];
    if (!isFinished(row.status)) {
      const live = await listWorkers(this.db.pool, this.liveWithinMs());
      const able = live.filter((w) => w.definitions.includes(row.definitionHash));
      const definition = `${row.name}@${row.definitionHash}${definitionVersion !== null && definitionVersion !== 1 ? ` (version ${definitionVersion})` : ''}`;
      if (able.length === 0) waitingForDefinition = definition;
      if (row.status !== 'paused' && live.length > 0 && able.length === 0) {
        // Workers run, but none has this shape (typically: a deploy dropped it): every step waits, ready or not yet.
        stalled.push(`no live worker has definition ${definition}: its steps wait until a worker that exports this version runs (see baton definitions)`);
      } else if (row.status !== 'paused') {
        for (const t of tasks) {
          if (t.status !== 'ready' || t.paused) continue;
          const step = `step ${t.taskKey} (${t.name})`;
          // A worker offering tags W takes tasks whose tags are all in W (untagged tasks: any worker).
          if (live.length === 0) stalled.push(`${step}: no live worker`);
          else if (!able.some((w) => t.tags.every((tag) => w.tags.includes(tag)))) {
            stalled.push(`${step}: no live worker with this definition offers tags [${t.tags.join(', ')}]`);
          }
        }
      }
    }
    return {
      ...row,
      output: this.decode(row.output),
      input: this.decode(row.input),
      tasks,
      definitionVersion,
      waitingForDefinition,
      stalled,
      estimatedSteps,
    };
  }

  private liveWithinMs(): number {
    return liveWindowMs(this.config.claimTtlMs);
  }

  /**
   * Every registered definition (or those of one name), highest version first: its hash, how many
   * instances are in flight under it, how many live workers can run them, and whether a start by
   * name uses it. During a deploy: a definition with instances in flight and no live worker is
   * stranded until a worker that exports it runs.
   */
  async definitions(options: { name?: string } = {}): Promise<DefinitionSummary[]> {
    if (options === null || typeof options !== 'object') throw new ValidationError('options must be an object');
    if (options.name !== undefined) validateName('workflow or task', options.name);
    return listDefinitions(this.db.pool, { ...(options.name !== undefined ? { names: [options.name] } : {}), aliveWithinMs: this.liveWithinMs() });
  }

  private decode(value: unknown): unknown {
    return value === null || value === undefined ? value : this.codec.decode(value as never);
  }

  /** Newest first, keyset pagination: pass `next` back as `cursor`. */
  async list(filter: ListFilter = {}): Promise<Page<InstanceSummary>> {
    if (filter.limit !== undefined && (!Number.isInteger(filter.limit) || filter.limit < 1 || filter.limit > 1000)) {
      throw new ValidationError(`limit must be a whole number from 1 to 1000 (got ${filter.limit})`);
    }
    return listInstances(this.db.pool, filter);
  }

  /**
   * The ready tasks a worker offering `tags` would claim next, in the order it would take them
   * (aging order: when each became ready + priority * agingIntervalMs; isolated tasks as a worker
   * holding none takes them). It reads the claim's own choice (baton.find_available_tasks) and
   * locks nothing, so polling it never delays a claim. A client does not know a worker's
   * definitions: tasks of any definition are listed. Due timers not promoted yet are not.
   */
  async findAvailableTasks(options: { tags?: string[]; limit?: number } = {}): Promise<AvailableTask[]> {
    if (options === null || typeof options !== 'object') throw new ValidationError('options must be an object');
    const limit = options.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new ValidationError(`limit must be a whole number from 1 to 1000 (got ${JSON.stringify(limit)})`);
    }
    return findAvailableTasks(this.db.pool, {
      limit,
      tags: normalizeTags(options.tags),
      hashes: null,
      isolateFrom: Math.max(1, this.config.maxLeaseLosses - 1), // as a worker with this config isolates
      isolatedSlots: 1,
    });
  }

  /**
   * Every schedule workers registered, by name, with its last and next tick. `workers` counts the
   * live workers that fire it: 0 means it does not fire (removed from the code, or no worker runs).
   */
  async schedules(): Promise<ScheduleView[]> {
    return listSchedules(this.db.pool, this.liveWithinMs());
  }

  /** One task's status and output by key (`get(id).tasks` lists the keys); null when there is no such task. */
  taskResult<O = unknown>(id: string, taskKey: string): Promise<more.TaskResult<O> | null> { return more.readTaskResult<O>(this.db.pool, this.codec, id, taskKey); }

  /** An instance's output stream (ctx.stream.write) after a cursor, oldest first (client/streams.ts). */
  readStream<F = unknown>(id: string, options?: more.ReadStreamOptions): Promise<more.StreamFrame<F>[]> { return more.readFrames<F>(this.db, this.codec, id, options); }

  /** Follow an instance's output stream live (LISTEN, not polling) until it ends: `for await (const f of client.tail(id))`. */
  tail<F = unknown>(id: string, options?: more.TailOptions): AsyncGenerator<more.StreamFrame<F>> { return more.tailFrames<F>(this.db, this.codec, this.log, id, options); }

  /** Complete a wait with a waitpoint token alone (client/waitpoints.ts); a WaitpointTokenError, nothing written, when refused. */
  completeWaitpoint(token: string, payload: unknown = null): Promise<more.CompletedWaitpoint> { return more.completeWithToken(this.db.pool, this.config, this.codec, token, payload); }

  /** A waitpoint token for instance `id`'s wait for `event`, as ctx.waitpointToken makes one (needs BATON_WAITPOINT_SECRET). */
  waitpointToken(id: string, event = 'waitpoint', options?: more.WaitpointOptions): string { return more.clientWaitpoint(this.config, id, event, options); }

  /** Every checkpoint, oldest first. */
  async history(id: string): Promise<HistoryEntry[]> {
    validateId(id);
    const rows = await listHistory(this.db.pool, id);
    if (rows.length === 0 && !(await loadInstance(this.db.pool, id))) throw new NotFoundError(`no workflow instance "${id}"`);
    return rows;
  }

  /** The instance's status and control state as of a version (rebuilt from history). */
  async stateAt(id: string, version?: number): Promise<RebuiltState> {
    return stateAt(await this.history(id), version);
  }

  /**
   * Wait for the instance to end: its output when it completed; a
   * WorkflowFailedError when it failed or was cancelled (its subclasses
   * WorkflowCompensatedError when it was compensated, CompensationFailedError
   * when a compensation failed for good); a TimeoutError when
   * `timeoutMs` passes first. Woken by NOTIFY baton_done, not by polling.
   */
  async result<O = unknown>(id: string, options: { timeoutMs?: number } = {}): Promise<O> {
    validateId(id);
    const timeoutMs = options.timeoutMs;
    if (timeoutMs !== undefined && (!Number.isFinite(timeoutMs) || timeoutMs < 0)) {
      throw new ValidationError(`timeoutMs must be a non-negative number (got ${timeoutMs})`);
    }
    await this.listen();
    let wakeUp: () => void = () => undefined;
    let wakeups = 0;
    const onWake = () => {
      wakeups += 1;
      wakeUp();
    };
    let set = this.waiters.get(id);
    if (!set) this.waiters.set(id, (set = new Set()));
    set.add(onWake);
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    try {
      for (;;) {
        const seen = wakeups;
        const row = await loadInstance(this.db.pool, id);
        if (!row) throw new NotFoundError(`no workflow instance "${id}"`);
        if (row.status === 'completed') return this.decode(row.output) as O;
        if (row.status === 'failed' || row.status === 'cancelled' || row.status === 'compensated') {
          throw workflowError(id, row.error as SerializedError | null, row.status);
        }
        if (wakeups !== seen) continue;
        const left = deadline - Date.now();
        if (left <= 0) throw new TimeoutError(`workflow ${id} is still ${row.status} after ${timeoutMs} ms`, { workflowId: id, status: row.status });
        // Without a LISTEN connection (a shared pool and no URL), look again every half second.
        const wait = this.listener ? left : Math.min(left, 500);
        await new Promise<void>((resolve) => {
          const timer = Number.isFinite(wait) ? setTimeout(resolve, wait) : undefined;
          wakeUp = () => {
            if (timer) clearTimeout(timer);
            wakeUp = () => undefined;
            resolve();
          };
          if (wakeups !== seen) wakeUp();
        });
      }
    } finally {
      set.delete(onWake);
      if (set.size === 0) this.waiters.delete(id);
    }
  }

  private async listen(): Promise<void> {
    if (this.listener || !this.db.url) return;
    this.listener = new Listener({
      url: this.db.url,
      channels: ['baton_done'],
      applicationName: 'baton:client',
      onNotify: (_channel, payload) => {
        if (payload === '*') for (const set of this.waiters.values()) set.forEach((w) => w());
        else for (const id of payload.split(',')) this.waiters.get(id)?.forEach((w) => w());
      },
      // Notifications sent while disconnected are lost: look again.
      onReconnect: () => this.waiters.forEach((set) => set.forEach((w) => w())),
      onError: (error) => this.log.warn({ err: error }, 'LISTEN connection lost; reconnecting'),
    });
    await this.listener.start();
  }

  /** Close the pool (if this client opened it), the LISTEN connection, and the embedded server if this process started it. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const set of this.waiters.values()) set.forEach((w) => w());
      await this.listener?.stop();
      await this.db.close();
    })();
    return this.closing;
  }
}

/** Connect (DATABASE_URL, or the embedded server), migrate, and return a client. */
export async function createClient(options: ClientOptions = {}): Promise<Client> {
  const config = loadConfig(process.env, options.config);
  const log = options.logger ?? createLogger({ level: config.logLevel });
  const db = await openBaton({
    config,
    connectionString: options.connectionString,
    pool: options.pool,
    applicationName: 'baton:client',
    log: (m) => log.debug(m),
    onPoolError: (error) => log.warn({ err: error }, 'a database connection was lost'),
  });
  return new Client(db, config, log, options.codec ?? jsonCodec);
}
