/**
 * Errors that say "this connection went away", not "this statement is wrong":
 * a restart, pg_terminate_backend, a network cut, a server that is starting.
 * Worth retrying after a pause.
 */
const CODES = new Set(['57P01', '57P02', '57P03', '53300', '08000', '08003', '08006', '08001', '08004', '40001', '40P01']);
const MESSAGES = /Connection terminated|ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|not queryable|Client was closed|timeout exceeded when trying to connect/i;

export function isTransient(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown };
  return (typeof e?.code === 'string' && (CODES.has(e.code) || MESSAGES.test(e.code))) || (typeof e?.message === 'string' && MESSAGES.test(e.message));
}

/**
 * Run fn, retrying transient errors with exponential back-off (up to `attempts` tries).
 * `retryable(error, attempt)` may narrow which errors are retried (default: isTransient).
 */
export async function retryTransient<T>(
  fn: () => Promise<T>,
  attempts = 8,
  onRetry?: (error: unknown) => void,
  retryable: (error: unknown, attempt: number) => boolean = isTransient,
): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (error) {
      if (i >= attempts || !retryable(error, i)) throw error;
      onRetry?.(error);
      await new Promise((r) => setTimeout(r, Math.min(5_000, 100 * 2 ** i)));
    }
  }
}
