/**
 * The metrics endpoint: GET /metrics in Prometheus text format, from one
 * worker's registry. Loopback only unless a host is configured (metrics name
 * tasks and queue sizes: not for the open internet). Every other path is a
 * 404. Stopped with the worker, open keep-alive connections (Prometheus keeps
 * one per target) included.
 */
import http from 'node:http';
import type { Registry } from 'prom-client';
import { ConfigError, PortInUseError } from '../errors.ts';
import type { Logger } from '../types.ts';

export interface MetricsServer {
  stop(): Promise<void>;
}

function respond(res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(body);
}

export async function serveMetrics(registry: Registry, at: { port: number; host: string }, log: Logger): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') return respond(res, 404, 'not found; metrics are at /metrics\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return respond(res, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
    registry.metrics().then(
      (text) => respond(res, 200, req.method === 'HEAD' ? '' : text, { 'content-type': registry.contentType }),
      (error: unknown) => {
        log.warn({ err: error }, 'metrics: a scrape failed');
        respond(res, 500, 'metrics could not be collected; see the worker log\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const where = `${at.host}:${at.port}`;
      if (error.code === 'EADDRINUSE') reject(new PortInUseError('the metrics server', at.host, at.port));
      else if (error.code === 'EACCES') reject(new ConfigError('BATON_METRICS_PORT', `the metrics server may not listen on ${where} (permission denied; ports below 1024 need privileges)`));
      else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') reject(new ConfigError('BATON_METRICS_HOST', `the metrics server cannot listen on ${where}: no such local address`));
      else reject(error);
    });
    server.listen(at.port, at.host, () => resolve());
  });
  server.on('error', (error) => log.warn({ err: error }, 'metrics server error'));
  log.info({ metrics: `http://${at.host.includes(':') ? `[${at.host}]` : at.host}:${at.port}/metrics` }, 'serving metrics');
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
