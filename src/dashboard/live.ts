/**
 * Live updates: LISTEN/NOTIFY in, server-sent events out.
 *
 * One LISTEN connection per dashboard process, on the channels the SQL
 * functions already notify (nothing is added to the hot path):
 *   baton_ready    tasks became ready (starts, next steps, retries, resumes, due timers)
 *   baton_done     instances ended, cancelled ones too (payload: their ids, or '*')
 *   baton_paused   instances were paused (payload: their ids, or '*'; pause_workflow)
 * plus `change()` for the dashboard's own actions, so they show at once.
 *
 * Notifications are coalesced: at most one `change` event per `intervalMs` to
 * each browser, carrying the ids that ended (or '*' when some change named
 * none). The browser then re-reads what it shows through the API, whose
 * queries are indexed and bounded. A comment line every 15 s keeps proxies
 * from closing an idle stream. After a reconnect of the LISTEN connection
 * (notifications sent meanwhile are lost) every browser is told to re-read.
 */
import type http from 'node:http';
import { Listener } from '../db/listen.ts';
import type { Logger } from '../types.ts';

// Not baton_cancel: cancel_tree sends baton_done with the same ids in the same transaction.
const CHANNELS = ['baton_ready', 'baton_done', 'baton_paused'];
const WITH_IDS = new Set(['baton_done', 'baton_paused']);

export class LiveHub {
  private readonly clients = new Set<http.ServerResponse>();
  private listener: Listener | undefined;
  private pendingIds = new Set<string>();
  private pendingAny = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly keepAlive: NodeJS.Timeout;
  private lastFlush = 0;

  constructor(
    private readonly o: { url: string | undefined; intervalMs: number; log: Logger; onChange?: () => void },
  ) {
    this.keepAlive = setInterval(() => this.broadcast(': keep-alive\n\n'), 15_000);
    this.keepAlive.unref();
  }

  /** True when changes arrive through LISTEN (false: the dashboard was given a pool without a URL). */
  get listening(): boolean {
    return this.listener !== undefined;
  }

  async start(): Promise<void> {
    if (!this.o.url) return;
    this.listener = new Listener({
      url: this.o.url,
      channels: CHANNELS,
      applicationName: 'baton:dashboard',
      onNotify: (channel, payload) => {
        if (WITH_IDS.has(channel) && payload !== '*' && payload !== '') this.change(payload.split(','));
        else this.change();
      },
      onReconnect: () => this.change(),
      onError: (error) => this.o.log.warn({ err: error }, 'dashboard: LISTEN connection lost; reconnecting'),
    });
    await this.listener.start();
  }

  /** Something changed: these instances, or (none given) anything. */
  change(ids?: string[]): void {
    if (ids && ids.length) for (const id of ids) this.pendingIds.add(id);
    else this.pendingAny = true;
    if (this.flushTimer) return;
    const wait = Math.max(0, this.lastFlush + this.o.intervalMs - Date.now());
    this.flushTimer = setTimeout(() => this.flush(), wait);
  }

  private flush(): void {
    this.flushTimer = undefined;
    this.lastFlush = Date.now();
    const ids = this.pendingAny || this.pendingIds.size > 200 ? '*' : [...this.pendingIds];
    this.pendingIds = new Set();
    this.pendingAny = false;
    this.o.onChange?.();
    this.broadcast(`event: change\ndata: ${JSON.stringify({ ids })}\n\n`);
  }

  private broadcast(text: string): void {
    for (const res of this.clients) res.write(text);
  }

  /** Turn a GET into an event stream that lasts until the browser goes. */
  subscribe(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`retry: 2000\nevent: hello\ndata: ${JSON.stringify({ listening: this.listening })}\n\n`);
    this.clients.add(res);
    req.on('close', () => this.clients.delete(res));
  }

  async stop(): Promise<void> {
    clearInterval(this.keepAlive);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    for (const res of this.clients) res.end();
    this.clients.clear();
    await this.listener?.stop();
  }
}
