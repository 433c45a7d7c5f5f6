/**
 * ctx.stream: an attempt's output stream, made on first use (attempts that never touch it cost
 * nothing). Frames are buffered and sent in batches, one batch in flight at a time, in order:
 *
 *   write() ──> buffer ──(FLUSH_MS elapsed, or MAX_FRAMES / MAX_BYTES reached, or flush())──> send
 *   send: baton.write_stream (fenced: the claim must still be this attempt's) ──> stored | refused
 *
 * So a task streaming model tokens pays about one round trip per FLUSH_MS, not one per token. The
 * attempt's end waits for end(): every frame is stored before its result is committed, and a frame
 * that could not be stored fails the attempt (its result would otherwise hide the loss).
 */
import type pg from 'pg';
import { encodePayload, type Codec } from '../codec.ts';
import type { BatonConfig } from '../config.ts';
import { coerceError, InvalidStateError, LeaseLostError, StreamFrameTooLargeError, ValidationError } from '../errors.ts';
import { writeStream } from '../store/streams.ts';
import type { TaskStream } from '../workflow/task.ts';
import type { Held } from './held.ts';

/** What an attempt needs to reach the database on its own (streams, waitpoint tokens). */
export interface AttemptIo {
  /** The worker's pool (undefined before it started). */
  pool(): pg.Pool | undefined;
  workerId: string;
  codec: Codec;
  maxFrameBytes: number;
  /** ctx.waitpointToken's secret and default lifetime. */
  waitpoints: Pick<BatonConfig, 'waitpointSecret' | 'waitpointTtlMs'>;
}

export function attemptIo(workerId: string, codec: Codec, config: BatonConfig, pool: () => pg.Pool | undefined): AttemptIo {
  return { pool, workerId, codec, maxFrameBytes: config.maxStreamFrameBytes, waitpoints: config };
}

const FLUSH_MS = 5;
const MAX_FRAMES = 500;
const MAX_BYTES = 1024 * 1024;

interface Batch {
  frames: unknown[];
  promise: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

function newBatch(): Batch {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A caller may ignore write()'s promise: its failure is not an unhandled rejection (end() reports it).
  promise.catch(() => undefined);
  return { frames: [], promise, resolve, reject };
}

export class StreamWriter implements TaskStream {
  private batch: Batch | undefined;
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  /** The first failure of a send: end() fails the attempt with it. */
  private failure: Error | undefined = undefined;
  private refused = false;
  private ended = false;

  constructor(
    private readonly held: Held,
    private readonly io: AttemptIo,
  ) {}

  write(frame: unknown): Promise<void> {
    if (this.ended) throw new InvalidStateError('this attempt has ended: its stream takes no more frames', 'ended');
    if (this.refused || this.held.lost) return handled(Promise.reject(lostError()));
    let encoded: unknown;
    try {
      encoded = encodePayload(this.io.codec, frame, 'a stream frame', Number.MAX_SAFE_INTEGER);
    } catch (error) {
      throw error instanceof ValidationError ? error : new ValidationError(String(error));
    }
    const size = Buffer.byteLength(JSON.stringify(encoded));
    if (size > this.io.maxFrameBytes) throw new StreamFrameTooLargeError(size, this.io.maxFrameBytes);
    const batch = (this.batch ??= newBatch());
    batch.frames.push(encoded);
    this.bytes += size;
    if (batch.frames.length >= MAX_FRAMES || this.bytes >= MAX_BYTES) this.send();
    else this.timer ??= setTimeout(() => this.send(), FLUSH_MS);
    return batch.promise;
  }

  flush(): Promise<void> {
    return handled(this.settle());
  }

  /** The attempt ended: send what is buffered, and resolve when all is stored (reject with the first failure). */
  end(): Promise<void> {
    this.ended = true;
    return this.settle();
  }

  private async settle(): Promise<void> {
    this.send();
    await this.chain;
    if (this.failure !== undefined) throw this.failure;
  }

  private send(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.batch;
    if (!batch) return;
    this.batch = undefined;
    this.bytes = 0;
    const run = this.chain.then(() => this.store(batch.frames));
    run.then(
      () => batch.resolve(),
      (error: unknown) => {
        this.failure ??= coerceError(error);
        batch.reject(error);
      },
    );
    this.chain = run.catch(() => undefined);
  }

  private async store(frames: unknown[]): Promise<void> {
    const pool = this.io.pool();
    if (this.refused || this.held.lost || !pool) throw lostError();
    const seq = await writeStream(pool, this.held.task, this.io.workerId, frames);
    if (seq === null) {
      this.refused = true;
      throw lostError();
    }
  }
}

function lostError(): LeaseLostError {
  return new LeaseLostError('the claim on this task was lost (or its attempt ended): the stream frame was refused, nothing was written');
}

function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}
