/**
 * Producer pacing for the fixed-rate mode: how many jobs the adapter owes.
 *
 * Two clocks add to one credit of jobs owed, and the producer takes it in
 * bulk calls of at most PRODUCER_BATCH_MAX rows:
 *
 *   harness tokens (stdin `ENQUEUE <n>`) ──┐
 *                                          ├──> Credit ──take(batchMax)──> client.enqueueMany
 *   own clock (every PRODUCER_BATCH_MS) ───┘
 *
 * - PRODUCER_PACING=harness: each token adds n x (control rate / base rate).
 *   The harness's pacer sends PRODUCER_RATE jobs/s whatever the control file
 *   says, so the scale is what makes the high-load phase (1.5x written to
 *   PRODUCER_RATE_CONTROL_FILE) reach the queue; the tokens stay the clock.
 *   When stdin ends (no harness writing), the own clock takes over.
 * - PRODUCER_PACING=adapter: the own clock credits control rate x the real
 *   elapsed time since its last tick (never a nominal period: a late tick
 *   must not under-meter the offered load).
 *
 * Stdin is always drained, whatever the mode: the harness writes tokens every
 * 25 ms to every adapter, and a pipe nobody reads fills in minutes and blocks
 * the harness.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

/** The target rate: the control file's number when it holds one, else the base rate. Re-read at most every `everyMs`. */
export class ControlRate {
  private value: number;
  private readAt = -Infinity;

  constructor(
    private readonly base: number,
    private readonly file: string | undefined,
    private readonly everyMs = 200,
  ) {
    this.value = base;
  }

  current(nowMs = performance.now()): number {
    if (this.file && nowMs - this.readAt >= this.everyMs) {
      this.readAt = nowMs;
      try {
        const n = Number(readFileSync(this.file, 'utf8').trim());
        // A file being rewritten can read empty for a moment: keep the last value.
        if (Number.isFinite(n) && n >= 0) this.value = n;
      } catch {
        // Missing (not written yet, or removed at the end of a run): keep the last value.
      }
    }
    return this.value;
  }

  /** What a harness token of n jobs is worth now (the pacer runs at the base rate). */
  scale(): number {
    return this.base > 0 ? this.current() / this.base : 1;
  }
}

/** Jobs owed, with a waiter woken when one is owed (or on wake()). */
export class Credit {
  private owed = 0;
  private waiter: (() => void) | undefined;

  add(jobs: number): void {
    this.owed += jobs;
    if (this.owed >= 1) this.wake();
  }

  /** Up to `max` whole jobs, taken off the credit. */
  take(max: number): number {
    const n = Math.min(max, Math.floor(this.owed));
    this.owed -= n;
    return n;
  }

  /** Resolves once a whole job is owed, or wake() is called. */
  wait(): Promise<void> {
    if (this.owed >= 1) return Promise.resolve();
    return new Promise((resolve) => (this.waiter = resolve));
  }

  wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}

/**
 * Reads `ENQUEUE <n>` lines from `input` and passes each n on; ignores other
 * lines. Reads everything, so the writer never blocks. `onEnd` runs when the
 * input ends or fails.
 */
export function readTokens(input: Readable, onTokens: (n: number) => void, onEnd: () => void): { close(): void } {
  const lines = createInterface({ input, crlfDelay: Infinity });
  lines.on('line', (line) => {
    const m = /^ENQUEUE\s+(\d+)\s*$/.exec(line.trim());
    if (m) {
      const n = Number(m[1]);
      if (n > 0) onTokens(n);
    }
  });
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    onEnd();
  };
  lines.on('close', end);
  input.on('error', end);
  return { close: () => lines.close() };
}

/** The own clock: every `periodMs`, credit rate x real elapsed seconds. */
export function selfPace(credit: Credit, rate: ControlRate, periodMs: number): { stop(): void } {
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    credit.add((rate.current(now) * (now - last)) / 1000);
    last = now;
  }, periodMs);
  return { stop: () => clearInterval(timer) };
}
