/**
 * One LISTEN connection per process, reconnected with back-off when the
 * server restarts or the connection is killed. After a reconnect `onReconnect`
 * runs, because notifications sent while we were away are lost: the caller
 * polls once to catch up. Polling stays the fallback in any case.
 */
import type pg from 'pg';
import { createClient } from './pool.ts';

export interface ListenerOptions {
  url: string;
  channels: string[];
  onNotify: (channel: string, payload: string) => void;
  onReconnect?: () => void;
  onError?: (error: Error) => void;
  applicationName?: string;
}

export class Listener {
  private client: pg.Client | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private connecting: Promise<void> | undefined;

  constructor(private readonly options: ListenerOptions) {}

  /** Resolves once listening (first attempt); later failures reconnect in the background. */
  async start(): Promise<void> {
    await this.connect();
  }

  private connect(): Promise<void> {
    this.connecting ??= this.doConnect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async doConnect(): Promise<void> {
    if (this.stopped) return;
    const client = createClient(this.options.url, this.options.applicationName ?? 'baton:listen');
    client.on('notification', (n) => this.options.onNotify(n.channel, n.payload ?? ''));
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client, new Error('LISTEN connection closed')));
    try {
      await client.connect();
      for (const channel of this.options.channels) await client.query(`listen ${client.escapeIdentifier(channel)}`);
    } catch (error) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      this.scheduleRetry(error as Error);
      return;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    const reconnected = this.attempt > 0;
    this.attempt = 0;
    this.client = client;
    if (reconnected) this.options.onReconnect?.();
  }

  private lost(client: pg.Client, error: Error): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    if (!this.stopped) this.scheduleRetry(error);
  }

  private scheduleRetry(error: Error): void {
    if (this.stopped || this.retryTimer) return;
    this.options.onError?.(error);
    this.attempt += 1;
    const delay = Math.min(5_000, 100 * 2 ** Math.min(this.attempt, 6)) * (0.5 + Math.random() / 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect();
    }, delay);
  }

  get connected(): boolean {
    return this.client !== undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.connecting?.catch(() => undefined);
    const client = this.client;
    this.client = undefined;
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
    }
  }
}
