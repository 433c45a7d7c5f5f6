/**
 * Which database: DATABASE_URL when set, otherwise the embedded server
 * (started, or attached to when another process on this machine runs it).
 */
import type { BatonConfig } from '../config.ts';
import { startEmbedded, type EmbeddedServer } from './embedded.ts';
import { createClient, unreachable } from './pool.ts';

export interface DatabaseHandle {
  readonly url: string;
  /** The embedded server when no DATABASE_URL was given. */
  readonly embedded?: EmbeddedServer;
  /** Stops the embedded server if this process started it. */
  close(): Promise<void>;
}

export async function openDatabase(
  config: Pick<BatonConfig, 'databaseUrl' | 'embedded'>,
  log: (message: string) => void = () => undefined,
  options: { probe?: boolean } = {},
): Promise<DatabaseHandle> {
  if (config.databaseUrl) {
    // probe: false when the caller connects at once anyway (to migrate), and reports a failure the same way.
    if (options.probe !== false) await checkReachable(config.databaseUrl);
    return { url: config.databaseUrl, close: async () => undefined };
  }
  const embedded = await startEmbedded({ ...config.embedded, log });
  return { url: embedded.url, embedded, close: () => embedded.stop() };
}

/** Fail fast, with a one-line message, when the server does not answer. */
export async function checkReachable(url: string): Promise<void> {
  const client = createClient(url, 'baton:probe');
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (cause) {
    throw unreachable(url, cause);
  } finally {
    await client.end().catch(() => undefined);
  }
}
