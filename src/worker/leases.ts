/**
 * Keeping claims alive: one timer renews every claim this worker holds in one
 * statement (every ttl/3; it is also the worker's heartbeat), another writes
 * the progress handlers reported. A claim the database says is gone, or whose
 * lease ran out by our own clock while the database could not be reached, is
 * lost: the caller aborts its handler.
 *
 * Suspects (tasks whose last attempt lost its lease) are marked begun in the
 * database before they run, those whose turn comes in the same tick in one
 * statement: a lost lease then counts against them, and not otherwise (see
 * drizzle/functions/reclaim_expired.sql).
 */
import type pg from 'pg';
import { beginClaims, renewClaims, saveProgress } from '../store/claims.ts';
import { heldId, type Held } from './held.ts';

export interface LeaseKeeperOptions {
  pool: pg.Pool;
  workerId: string;
  ttlMs: number;
  held: Map<string, Held>;
  lose(held: Held, reason: 'lease'): void;
  /** Give a claim back unstarted (the attempt too). */
  giveBack(held: Held): Promise<void>;
  onError(during: string, error: unknown): void;
}

/** What marking a suspect begun came to: it may run, its claim is gone, or the database could not be asked. */
type BeginResult = 'begun' | 'lost' | 'error';

export class LeaseKeeper {
  private renewTimer: NodeJS.Timeout | undefined;
  private progressTimer: NodeJS.Timeout | undefined;
  private beginning: { held: Held; settle: (r: BeginResult) => void }[] = [];

  constructor(private readonly o: LeaseKeeperOptions) {}

  start(): void {
    this.renewTimer = setInterval(() => void this.renew(), Math.max(100, Math.floor(this.o.ttlMs / 3)));
    this.progressTimer = setInterval(() => void this.flushProgress(), 500);
  }

  async stop(): Promise<void> {
    clearInterval(this.renewTimer);
    clearInterval(this.progressTimer);
    await this.flushProgress().catch(() => undefined);
  }

  async renew(): Promise<void> {
    const now = Date.now();
    // Runs with no claims too: the statement also records the heartbeat.
    const claims = [...this.o.held.values()].filter((h) => !h.lost);
    try {
      const lost = await renewClaims(
        this.o.pool,
        this.o.workerId,
        claims.map((h) => ({ workflowId: h.task.workflowId, taskKey: h.task.taskKey, epoch: h.task.epoch })),
        this.o.ttlMs,
      );
      const gone = new Set(lost.map((l) => heldId(l.workflowId, l.taskKey)));
      for (const h of claims) {
        if (gone.has(h.id)) {
          if (this.o.held.get(h.id) === h && h.phase !== 'committing') this.o.lose(h, 'lease');
        } else h.expiresAt = now + this.o.ttlMs;
      }
    } catch (error) {
      this.o.onError('renew', error);
      // Could not renew: a claim whose lease ran out by our own clock is lost.
      for (const h of claims) if (h.expiresAt < Date.now() && h.phase !== 'committing') this.o.lose(h, 'lease');
    }
  }

  /**
   * A held task's turn has come: whether it still runs (it was not lost or given back meanwhile),
   * marked running; for a suspect, once it is marked begun (mayRun).
   */
  beginAttempt(held: Held): boolean | Promise<boolean> {
    const go = (): boolean => {
      if (held.lost || this.o.held.get(held.id) !== held) return false;
      held.phase = 'running';
      held.startedAt = Date.now();
      return true;
    };
    return held.task.suspect ? this.mayRun(held).then((ok) => ok && go()) : go();
  }

  /**
   * Whether a suspect may run now: marked begun, it may; its claim gone, it is lost; the database
   * unreachable, it is given back unstarted.
   */
  async mayRun(held: Held): Promise<boolean> {
    if (held.lost || this.o.held.get(held.id) !== held) return false;
    const r = await this.begin(held);
    if (r === 'lost') this.o.lose(held, 'lease');
    else if (r === 'error') await this.o.giveBack(held);
    return r === 'begun';
  }

  /** Mark a suspect begun before it runs (batched with the others whose turn comes this tick). */
  private begin(held: Held): Promise<BeginResult> {
    return new Promise((settle) => {
      if (this.beginning.push({ held, settle }) === 1) queueMicrotask(() => void this.flushBegins());
    });
  }

  private async flushBegins(): Promise<void> {
    const batch = this.beginning;
    this.beginning = [];
    try {
      const lost = await beginClaims(
        this.o.pool,
        this.o.workerId,
        batch.map(({ held: h }) => ({ workflowId: h.task.workflowId, taskKey: h.task.taskKey, epoch: h.task.epoch })),
      );
      const gone = new Set(lost.map((l) => heldId(l.workflowId, l.taskKey)));
      for (const b of batch) b.settle(gone.has(b.held.id) ? 'lost' : 'begun');
    } catch (error) {
      this.o.onError('begin', error);
      for (const b of batch) b.settle('error');
    }
  }

  async flushProgress(): Promise<void> {
    const dirty = [...this.o.held.values()].filter((h) => h.progress?.dirty && !h.lost);
    if (dirty.length === 0) return;
    for (const h of dirty) h.progress!.dirty = false;
    try {
      await saveProgress(
        this.o.pool,
        this.o.workerId,
        dirty.map((h) => ({
          workflowId: h.task.workflowId,
          taskKey: h.task.taskKey,
          epoch: h.task.epoch,
          percent: h.progress!.percent,
          message: h.progress!.message,
        })),
      );
    } catch (error) {
      for (const h of dirty) h.progress!.dirty = true;
      this.o.onError('progress', error);
    }
  }
}
