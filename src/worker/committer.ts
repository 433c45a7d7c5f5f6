/**
 * Batches finished attempts, across tasks and instances, for a window of a
 * few ms (completionBatchMs, BATON_COMPLETION_BATCH_MS) and commits each
 * batch in one round trip.
 *
 *   add() ──> pending ──(window elapsed or batch full)──> flush:
 *     plan with the machine ──> baton.commit ──> applied    -> settled
 *                                            ├─> refused    -> settled (counted by the database)
 *                                            ├─> duplicate  -> settled (our earlier commit landed)
 *                                            └─> conflict   -> plan again from the fresh snapshot
 *                                                (a waitForEvent attempt whose event is gone: as a re-wait)
 *
 * A database error leaves the attempts pending: they are committed again
 * after a back-off, their leases still renewed. A connection lost mid-commit
 * is safe: the retry either commits or finds the attempt already committed.
 */
import type pg from 'pg';
import type { ClaimedTask, ClaimParams } from '../store/claims.ts';
import { commitBatch, type CommitBatch } from '../store/commit.ts';
import type { Logger } from '../types.ts';
import { planBatch, type Finished, type InstanceSnapshot } from './plan.ts';

export type Settlement = 'applied' | 'refused' | 'duplicate';

export interface CommitterOptions {
  pool: pg.Pool;
  workerId: string;
  windowMs: number;
  maxBatch: number;
  /** Commits in flight at once. */
  maxInFlight: number;
  log: Logger;
  onSettled(f: Finished, how: Settlement, finishedStatus?: string): void;
  onError(error: unknown): void;
  /** Each commit round trip's duration in ms (for metrics). */
  onRoundTrip?(ms: number): void;
  /** How many tasks to claim along with this commit (the worker reserves room for them). */
  claimAlong?(): Omit<ClaimParams, 'workerId'> | undefined;
  /** The tasks claimed along (also called with [] when a claim was asked for and none came). */
  onClaimed?(tasks: ClaimedTask[], asked: number): void;
}

const MAX_CONFLICT_ROUNDS = 50;
/** Instances whose newest committed snapshot is remembered (see `latest`). */
const LATEST_KEPT = 2_048;

export class Committer {
  private pending: Finished[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  /** Instances in the commits in flight. */
  private readonly busy = new Set<string>();
  private readonly flushes = new Set<Promise<void>>();
  private failures = 0;
  private closed = false;
  private stopped = false;
  private readonly counts = { calls: 0, items: 0, ms: 0, conflicts: 0 };
  /**
   * The snapshot each of this worker's commits left its instance in (unfinished ones), newest
   * last. A task claimed before that commit carries an older snapshot: planned from it, its commit
   * would conflict, fetch this very snapshot and go again. A fan-out's branches are claimed and
   * finished across several commits, so without it most of their commits conflicted once (S6,
   * 20 branches: 5,524 instance conflicts and 18,481 attempts sent for 10,500 tasks). Only a
   * hint: the commit still compares versions, and a snapshot another worker moved on conflicts
   * as before.
   */
  private readonly latest = new Map<string, InstanceSnapshot>();

  constructor(private readonly o: CommitterOptions) {}

  get size(): number {
    return this.pending.length;
  }

  stats(): { calls: number; items: number; ms: number; conflicts: number } {
    return { ...this.counts };
  }

  add(f: Finished): void {
    this.pending.push(f);
    if (this.pending.length >= this.o.maxBatch) this.kick(0);
    else this.kick(this.o.windowMs);
  }

  private kick(delay: number): void {
    // After drain() gave up, a commit finishing late must not arm a timer nobody will clear.
    if (this.stopped || this.inFlight >= this.o.maxInFlight || this.pending.length === 0) return;
    if (delay === 0) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      this.startFlush();
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.startFlush();
    }, delay);
  }

  /**
   * The next batch: pending attempts in arrival order, leaving out instances that a commit in
   * flight holds. A second commit touching them would wait for that one's row locks and then
   * conflict on the version it moved; S6 (fan-outs of 20) spent 32 ms per commit in the lock
   * statement that way once claims and commits grew to hundreds of attempts.
   */
  private takeBatch(): Finished[] {
    if (this.busy.size === 0) return this.pending.splice(0, this.o.maxBatch);
    const batch: Finished[] = [];
    const rest: Finished[] = [];
    for (const f of this.pending) {
      if (batch.length < this.o.maxBatch && !this.busy.has(f.held.task.workflowId)) batch.push(f);
      else rest.push(f);
    }
    this.pending = rest;
    return batch;
  }

  private startFlush(): void {
    if (this.inFlight >= this.o.maxInFlight || this.pending.length === 0) return;
    const batch = this.takeBatch();
    if (batch.length === 0) return; // all held by the commit in flight; its end kicks again
    const ids = new Set(batch.map((f) => f.held.task.workflowId));
    for (const id of ids) this.busy.add(id);
    this.inFlight += 1;
    const p = this.commit(batch).finally(() => {
      for (const id of ids) this.busy.delete(id);
      this.inFlight -= 1;
      this.flushes.delete(p);
      if (this.pending.length >= this.o.maxBatch || (this.pending.length > 0 && this.closed)) this.kick(0);
      else if (this.pending.length > 0) this.kick(this.failures > 0 ? this.backoff() : this.o.windowMs);
    });
    this.flushes.add(p);
  }

  private backoff(): number {
    return Math.min(5_000, 50 * 2 ** Math.min(this.failures, 7)) * (0.5 + Math.random() / 2);
  }

  private async commit(batch: Finished[]): Promise<void> {
    let work = batch;
    const known = new Map<string, InstanceSnapshot>();
    for (const f of batch) {
      const s = this.latest.get(f.held.task.workflowId);
      if (s) known.set(f.held.task.workflowId, s);
    }
    for (let round = 0; work.length > 0; round++) {
      if (round === MAX_CONFLICT_ROUNDS) {
        this.o.log.warn({ instances: [...new Set(work.map((f) => f.held.task.workflowId))] }, 'commit kept conflicting; trying again later');
        this.pending.push(...work);
        return;
      }
      const plan = planBatch(this.o.workerId, work, known);
      let results;
      const claim = this.closed ? undefined : this.o.claimAlong?.();
      try {
        const t0 = performance.now();
        const reply = await commitBatch(this.o.pool, this.o.workerId, plan, claim);
        results = reply.results;
        if (claim) this.o.onClaimed?.(reply.claimed, claim.limit);
        const ms = performance.now() - t0;
        this.o.onRoundTrip?.(ms);
        this.counts.calls += 1;
        this.counts.items += plan.items.length;
        this.counts.ms += ms;
        this.counts.conflicts += results.filter((r) => r.result === 'conflict').length;
        this.failures = 0;
      } catch (error) {
        if (claim) this.o.onClaimed?.([], claim.limit);
        this.failures += 1;
        this.o.onError(error);
        this.pending.push(...work);
        return;
      }
      const finishing = new Map(plan.instances.filter((i) => i.finished).map((i) => [i.id, i.status]));
      // Only what was not applied comes back: conflicts (fresh snapshots), refusals, duplicates.
      const conflicted = new Set<string>();
      const gone = new Map<string, Settlement>();
      const noEvent = new Set<string>();
      for (const r of results) {
        if (r.result === 'refused' || r.result === 'duplicate') gone.set(`${r.workflowId}\u0000${r.taskKey}`, r.result);
        else if (r.result === 'eventGone') noEvent.add(`${r.workflowId}\u0000${r.taskKey}`);
        else {
          conflicted.add(r.workflowId);
          known.set(r.workflowId, { status: r.status, state: r.state as InstanceSnapshot['state'], version: r.version });
        }
      }
      this.remember(plan.instances.filter((i) => !conflicted.has(i.id)));
      const next: Finished[] = [];
      for (const f of work) {
        const id = f.held.task.workflowId;
        const how = gone.get(`${id}\u0000${f.held.task.taskKey}`);
        if (how) this.o.onSettled(f, how);
        // Its event went to nobody else while it held it, unless it lost its claim: it waits again, without it.
        else if (noEvent.has(`${id}\u0000${f.held.task.taskKey}`)) next.push({ held: f.held, outcome: { kind: 'rewait' } });
        else if (conflicted.has(id)) next.push(f);
        else {
          // The instance's end is reported with one of its attempts, not with each.
          const ended = finishing.get(id);
          finishing.delete(id);
          this.o.onSettled(f, 'applied', ended);
        }
      }
      work = next;
    }
  }

  /** The snapshots the applied instances are in now: kept while unfinished, the oldest dropped beyond LATEST_KEPT. */
  private remember(applied: CommitBatch['instances']): void {
    for (const i of applied) {
      this.latest.delete(i.id);
      if (!i.finished) this.latest.set(i.id, { status: i.status, state: i.state as InstanceSnapshot['state'], version: i.version + i.bump });
    }
    for (const id of this.latest.keys()) {
      if (this.latest.size <= LATEST_KEPT) break;
      this.latest.delete(id);
    }
  }

  /** Commit everything pending now and wait for every commit in flight. */
  async drain(deadline = Infinity): Promise<void> {
    this.closed = true;
    // Every wait here is cleared when it loses the race: a timer left running until the deadline
    // would outlive the worker by seconds.
    const waitUpTo = async (ms: number, work?: Promise<unknown>) => {
      let timer: NodeJS.Timeout | undefined;
      const timeUp = new Promise((r) => (timer = setTimeout(r, Math.max(0, Math.min(ms, deadline - Date.now(), 2 ** 31 - 1)))));
      try {
        await (work ? Promise.race([work, timeUp]) : timeUp);
      } finally {
        clearTimeout(timer);
      }
    };
    while ((this.pending.length > 0 || this.flushes.size > 0) && Date.now() < deadline) {
      if (this.flushes.size === 0) {
        if (this.failures > 0) await waitUpTo(this.backoff());
        this.kick(0);
      }
      await waitUpTo(Infinity, Promise.allSettled([...this.flushes]));
    }
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Attempts still waiting to be committed (given up at a forced stop). */
  takePending(): Finished[] {
    return this.pending.splice(0);
  }
}
