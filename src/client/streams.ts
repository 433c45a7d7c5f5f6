/**
 * Reading output streams (ctx.stream.write): client.readStream pages through an instance's frames
 * by seq; client.tail follows them live until the instance ends.
 *
 * tail: LISTEN baton_stream (one NOTIFY per stored batch, payload the instance id) and baton_done
 * (the instance ended) on a connection of its own, opened before the first read, so no frame
 * stored after a read goes unnoticed. Each round: read the instance's status, then every frame
 * past the cursor; when that status was finished, every frame is stored (an attempt's frames are
 * stored before its result), so the tail ends. Otherwise it sleeps until a notification (or a
 * reconnect of the LISTEN connection, after which it reads again). Without a URL to LISTEN on (a
 * client given a pool), it reads every half second instead.
 */
import type { Codec } from '../codec.ts';
import { Listener } from '../db/listen.ts';
import type { OpenedDatabase } from '../db/open.ts';
import { NotFoundError, ValidationError } from '../errors.ts';
import { instanceStatus, readStream, type StreamFrame } from '../store/streams.ts';
import { isFinished, type Logger, type WorkflowStatus } from '../types.ts';
import { validateId } from '../workflow/names.ts';

export interface ReadStreamOptions {
  /** Frames after this seq (0, the default: from the start). */
  from?: number;
  /** At most this many (1 to 10000, default 1000). */
  limit?: number;
}

export interface TailOptions {
  /** Frames after this seq (default 0: the whole stream, then live). */
  from?: number;
  /** Stop following (the iteration ends). */
  signal?: AbortSignal;
}

function checkFrom(from: unknown): number {
  if (from === undefined) return 0;
  if (typeof from !== 'number' || !Number.isSafeInteger(from) || from < 0) {
    throw new ValidationError(`from must be a whole number of 0 or more (got ${JSON.stringify(from)})`);
  }
  return from;
}

function decoded(codec: Codec, frames: StreamFrame[]): StreamFrame[] {
  for (const f of frames) if (f.frame !== null) f.frame = codec.decode(f.frame as never);
  return frames;
}

export async function readFrames<F>(db: OpenedDatabase, codec: Codec, id: string, options: ReadStreamOptions = {}): Promise<StreamFrame<F>[]> {
  validateId(id);
  if (options === null || typeof options !== 'object') throw new ValidationError('options must be an object');
  const from = checkFrom(options.from);
  const limit = options.limit ?? 1000;
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new ValidationError(`limit must be a whole number from 1 to 10000 (got ${JSON.stringify(limit)})`);
  return decoded(codec, await readStream(db.pool, id, from, limit)) as StreamFrame<F>[];
}

export async function* tailFrames<F>(db: OpenedDatabase, codec: Codec, log: Logger, id: string, options: TailOptions = {}): AsyncGenerator<StreamFrame<F>, void, undefined> {
  validateId(id);
  if (options === null || typeof options !== 'object') throw new ValidationError('options must be an object');
  let from = checkFrom(options.from);
  const signal = options.signal;
  let wakeups = 0;
  let wake: () => void = () => undefined;
  const onWake = () => {
    wakeups += 1;
    wake();
  };
  const listener = db.url
    ? new Listener({
        url: db.url,
        channels: ['baton_stream', 'baton_done'],
        applicationName: 'baton:tail',
        onNotify: (channel, payload) => {
          if (payload === '*' || payload === id || (channel === 'baton_done' && payload.split(',').includes(id))) onWake();
        },
        onReconnect: onWake,
        onError: (error) => log.warn({ err: error }, 'tail: LISTEN connection lost; reconnecting'),
      })
    : undefined;
  await listener?.start();
  signal?.addEventListener('abort', onWake);
  try {
    for (let round = 0; !signal?.aborted; round++) {
      const seen = wakeups;
      const status = (await instanceStatus(db.pool, id)) as WorkflowStatus | null;
      if (status === null) {
        if (round === 0) throw new NotFoundError(`no workflow instance "${id}"`);
        return; // deleted meanwhile
      }
      for (;;) {
        const frames = decoded(codec, await readStream(db.pool, id, from, 1000));
        for (const f of frames) {
          from = f.seq;
          yield f as StreamFrame<F>;
          if (signal?.aborted) return;
        }
        if (frames.length < 1000) break;
      }
      if (isFinished(status)) return;
      if (wakeups !== seen) continue;
      await new Promise<void>((resolve) => {
        const timer = listener ? undefined : setTimeout(resolve, 500);
        wake = () => {
          if (timer) clearTimeout(timer);
          wake = () => undefined;
          resolve();
        };
        if (wakeups !== seen) wake();
      });
    }
  } finally {
    signal?.removeEventListener('abort', onWake);
    await listener?.stop();
  }
}
