/**
 * The dashboard: a web UI over the store, served by node:http.
 *
 *   const dashboard = await startDashboard({ port: 7400 });   // or `baton dashboard`
 *   console.log(dashboard.url); ... await dashboard.close();
 *
 * Security, in order of the checks on each request:
 * - It listens on 127.0.0.1 unless told otherwise. Any other host needs a
 *   token (refused at start without one).
 * - With a token, every request needs `Authorization: Bearer <token>` or the
 *   cookie a browser gets by opening any page once with `?token=<token>` (the
 *   answer sets an HttpOnly, SameSite=Strict cookie and redirects to the
 *   same URL without the token). Tokens are compared in constant time.
 * - Without a token (loopback only), the Host header must name a loopback
 *   address: a page elsewhere cannot reach it by DNS rebinding.
 * - `readOnly`: the page shows no actions and the API refuses them (403).
 *   Actions are POSTs with a JSON body and a custom header, which no other
 *   origin can send without a CORS preflight (never granted).
 * The token is never logged or printed.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, type Client, type ClientOptions } from '../client/client.ts';
import { ConfigError, PortInUseError } from '../errors.ts';
import { createLogger } from '../log.ts';
import type { Logger } from '../types.ts';
import { handleApi, OverviewCache, type ApiContext } from './api.ts';
import { errorReply, HttpError, send, sendJson } from './http.ts';
import { LiveHub } from './live.ts';

export interface DashboardOptions extends Pick<ClientOptions, 'connectionString' | 'config' | 'codec'> {
  /** Port to listen on (default 7400; 0: any free port). */
  port?: number;
  /** Address to listen on (default 127.0.0.1). Any other address needs `token`. */
  host?: string;
  /** Required from every request when set (at least 16 characters); required when `host` is not loopback. */
  token?: string;
  /** Show no actions, and refuse them in the API. */
  readOnly?: boolean;
  /** Use this client (not closed by close()); else the dashboard creates one from the options above. */
  client?: Client;
  logger?: Logger;
  /** Live updates reach the page at most this often (default 1000 ms). */
  liveIntervalMs?: number;
}

export interface Dashboard {
  /** Where it listens, e.g. http://127.0.0.1:7400/ (without the token). */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const COOKIE = 'baton_dashboard_token';
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** The page's files, read once: they ship beside this module (dist/dashboard/assets, copied by the build). */
function loadAssets(): Map<string, { body: Buffer; type: string }> {
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'assets');
  const assets = new Map<string, { body: Buffer; type: string }>();
  for (const file of readdirSync(dir)) {
    const type = TYPES[path.extname(file)];
    if (type) assets.set(file, { body: readFileSync(path.join(dir, file)), type });
  }
  return assets;
}

function checkOptions(o: DashboardOptions): { port: number; host: string; token: string | undefined } {
  const port = o.port ?? 7400;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError('port', `the dashboard's port must be a whole number from 0 to 65535 (got ${JSON.stringify(o.port)})`);
  const host = o.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host === '') throw new ConfigError('host', 'the dashboard\'s host must be an address such as 127.0.0.1');
  const token = o.token === undefined || o.token === '' ? undefined : o.token;
  if (token !== undefined && (typeof token !== 'string' || token.length < 16 || /\s/.test(token))) {
    throw new ConfigError('BATON_DASHBOARD_TOKEN', 'the dashboard token must be at least 16 characters without spaces (for example: openssl rand -hex 24)');
  }
  if (!LOOPBACK.has(host) && token === undefined) {
    throw new ConfigError(
      'BATON_DASHBOARD_TOKEN',
      `the dashboard would listen on ${host}, which other machines may reach: give it a token (--token or BATON_DASHBOARD_TOKEN), or listen on 127.0.0.1`,
    );
  }
  return { port, host, token };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function cookieToken(req: http.IncomingMessage): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === COOKIE) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

export async function startDashboard(options: DashboardOptions = {}): Promise<Dashboard> {
  const { port, host, token } = checkOptions(options);
  const log = options.logger ?? createLogger();
  const assets = loadAssets();
  const client = options.client ?? (await createClient({ ...options, logger: log }));
  const expected = token === undefined ? undefined : digest(token);
  const allowed = (given: string | undefined) => given !== undefined && expected !== undefined && timingSafeEqual(digest(given), expected);
  const hub = new LiveHub({ url: client.url, intervalMs: options.liveIntervalMs ?? 1_000, log });
  const ctx: ApiContext = {
    client,
    readOnly: options.readOnly ?? false,
    listening: () => hub.listening,
    changed: (id) => hub.change([id]),
    overviewTtlMs: 2_000,
    scanLimit: 50_000,
  };
  const overview = new OverviewCache(ctx);

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    const pathname = url.pathname;
    const isApi = pathname === '/api' || pathname.startsWith('/api/');
    if (expected) {
      const queryToken = url.searchParams.get('token');
      if (queryToken !== null && (req.method === 'GET' || req.method === 'HEAD') && !isApi) {
        if (!allowed(queryToken)) throw new HttpError(401, 'UNAUTHORIZED', 'the token in the URL is not this dashboard\'s');
        url.searchParams.delete('token');
        const cookie = `${COOKIE}=${encodeURIComponent(queryToken)}; HttpOnly; SameSite=Strict; Path=/`;
        return send(res, 303, '', 'text/plain; charset=utf-8', { location: `${pathname}${url.search}`, 'set-cookie': cookie });
      }
      const header = req.headers.authorization;
      const bearer = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
      if (!allowed(bearer) && !allowed(cookieToken(req))) {
        throw new HttpError(401, 'UNAUTHORIZED', 'this dashboard needs its token: send "Authorization: Bearer <token>", or open the page once with ?token=<token>');
      }
    } else {
      const hostName = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
      if (!LOOPBACK.has(hostName)) throw new HttpError(421, 'HOST', 'this dashboard answers only requests addressed to 127.0.0.1 or localhost');
    }
    if (isApi) {
      if (pathname === '/api/live' && req.method === 'GET') return hub.subscribe(req, res);
      const value = await handleApi(ctx, overview, req, pathname, url.searchParams);
      return sendJson(res, 200, value);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'METHOD', 'pages are read with GET');
    if (pathname.startsWith('/assets/')) {
      const asset = assets.get(pathname.slice('/assets/'.length));
      if (!asset) throw new HttpError(404, 'NOT_FOUND', `no file ${pathname}`);
      return send(res, 200, asset.body, asset.type, { 'cache-control': 'no-cache' });
    }
    if (pathname === '/' || pathname === '/instances' || /^\/instances\/[^/]+$/.test(pathname)) {
      const page = assets.get('index.html')!;
      return send(res, 200, page.body, page.type);
    }
    throw new HttpError(404, 'NOT_FOUND', `no page at ${pathname}`);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      const reply = errorReply(error, log);
      const wantsJson = (req.url ?? '').startsWith('/api') || !(req.headers.accept ?? '').includes('text/html');
      if (wantsJson) sendJson(res, reply.status, { error: { code: reply.code, message: reply.message } });
      else send(res, reply.status, errorPage(reply.status, reply.message), 'text/html; charset=utf-8');
    });
  });
  try {
    await hub.start();
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'EADDRINUSE') reject(new PortInUseError('the dashboard', host, port));
        else if (error.code === 'EACCES') reject(new ConfigError('port', `the dashboard may not listen on ${host}:${port} (permission denied; ports below 1024 need privileges)`));
        else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') reject(new ConfigError('host', `the dashboard cannot listen on ${host}: no such local address`));
        else reject(error);
      });
      server.listen(port, host, () => resolve());
    });
  } catch (error) {
    await hub.stop();
    if (!options.client) await client.close();
    throw error;
  }
  server.on('error', (error) => log.warn({ err: error }, 'dashboard server error'));
  const bound = (server.address() as { port: number }).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}/`;
  let closing: Promise<void> | undefined;
  return {
    url,
    port: bound,
    close: () =>
      (closing ??= (async () => {
        await hub.stop();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        if (!options.client) await client.close();
      })()),
  };
}

function errorPage(status: number, message: string): string {
  const escaped = message.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Baton: ${status}</title><link rel="stylesheet" href="/assets/style.css"></head><body><main class="error-page"><h1>${status}</h1><p>${escaped}</p><p><a href="/">Back to the overview</a></p></main></body></html>`;
}
