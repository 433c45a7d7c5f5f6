/**
 * Transactional start: run Baton's statements on the caller's transaction, so
 * the instance exists only if that transaction commits. Accepts a pg client
 * (PoolClient or Client, in a transaction the caller opened) or a Drizzle
 * transaction (node-postgres driver).
 */
import type { SQL } from 'drizzle-orm';
import { ValidationError } from '../errors.ts';
import type { Executor } from '../types.ts';

export interface DrizzleTransactionLike {
  execute(query: SQL): Promise<{ rows: Record<string, unknown>[]; rowCount?: number | null }>;
}

export type TransactionLike = Executor | DrizzleTransactionLike;

/**
 * `$1`-style text and values as a Drizzle SQL object (every value a bound parameter).
 * Drizzle is loaded here, on first use: only apps that pass a Drizzle transaction need it.
 */
let drizzleOrm: Promise<typeof import('drizzle-orm')> | undefined;

async function toDrizzleSql(text: string, values: unknown[] = []): Promise<SQL> {
  const { sql } = await (drizzleOrm ??= import('drizzle-orm'));
  const chunks: SQL[] = [];
  let last = 0;
  for (const m of text.matchAll(/\$(\d+)/g)) {
    chunks.push(sql.raw(text.slice(last, m.index)));
    // sql.param: one bound parameter even for arrays (a plain interpolation would expand them).
    chunks.push(sql`${sql.param(values[Number(m[1]) - 1])}`);
    last = m.index! + m[0].length;
  }
  chunks.push(sql.raw(text.slice(last)));
  return sql.join(chunks);
}

export function toExecutor(tx: TransactionLike): Executor {
  if (tx && typeof (tx as Executor).query === 'function') return tx as Executor;
  if (tx && typeof (tx as DrizzleTransactionLike).execute === 'function') {
    const d = tx as DrizzleTransactionLike;
    return {
      // Also takes node-postgres' query config ({ name, text, values }): the store prepares its
      // hot statements by name, which a Drizzle transaction runs as a plain statement.
      async query(textOrConfig: string | { text: string; values?: unknown[] }, values?: unknown[]) {
        const [text, params] = typeof textOrConfig === 'string' ? [textOrConfig, values] : [textOrConfig.text, textOrConfig.values];
        const result = await d.execute(await toDrizzleSql(text, params));
        return { rows: result.rows as never[], rowCount: result.rowCount ?? result.rows.length };
      },
    };
  }
  throw new ValidationError('tx must be a pg client or a Drizzle transaction');
}
