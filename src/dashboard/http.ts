/** Small HTTP helpers of the dashboard: JSON replies, errors as clear messages, bodies with a size limit. */
import type http from 'node:http';
import { BatonError, ValidationError } from '../errors.ts';
import type { Logger } from '../types.ts';

/** An HTTP-level refusal (auth, read-only, method, size) with its status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
};

export function send(res: http.ServerResponse, status: number, body: string | Buffer, type: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return void res.end();
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...SECURITY_HEADERS, ...headers });
  res.end(body);
}

export function sendJson(res: http.ServerResponse, status: number, value: unknown): void {
  send(res, status, JSON.stringify(value), 'application/json; charset=utf-8');
}

/** A typed error's status and message; anything else is logged and answered with a message that shows no internals. */
export function errorReply(error: unknown, log: Logger): { status: number; code: string; message: string } {
  if (error instanceof HttpError) return { status: error.status, code: error.code, message: error.message };
  if (error instanceof BatonError && error.userError) {
    const status = error.code === 'NOT_FOUND' ? 404 : error.code === 'CONFLICT' || error.code === 'INVALID_STATE' ? 409 : 400;
    return { status, code: error.code, message: error.message };
  }
  if (error instanceof BatonError && error.code === 'DATABASE_UNAVAILABLE') return { status: 503, code: error.code, message: error.message };
  log.error({ err: error }, 'dashboard: a request failed');
  return { status: 500, code: 'INTERNAL', message: 'the dashboard could not answer this request (the error is in its log)' };
}

export async function readJsonBody(req: http.IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send the request body as JSON (content-type: application/json)');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new HttpError(413, 'TOO_LARGE', `the request body is larger than ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ValidationError('the request body is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ValidationError('the request body must be a JSON object');
  return value as Record<string, unknown>;
}
