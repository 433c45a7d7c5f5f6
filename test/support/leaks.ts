/**
 * Pools that belong to a test file (opened in before(), closed in after())
 * grow lazily while tests run. The per-test leak check allows for that growth:
 * their sockets and idle timers are expected, anything else is a leak.
 */
import type pg from 'pg';

const fixturePools = new Set<pg.Pool>();

export function trackFixturePool<T extends pg.Pool>(pool: T): T {
  fixturePools.add(pool);
  const end = pool.end.bind(pool);
  pool.end = (async () => {
    fixturePools.delete(pool);
    return end();
  }) as typeof pool.end;
  return pool;
}

/** Sockets and idle timers held by fixture pools right now. */
export function fixtureHoldings(): { sockets: number; timers: number } {
  let sockets = 0;
  let timers = 0;
  for (const pool of fixturePools) {
    sockets += pool.totalCount;
    timers += pool.idleCount;
  }
  return { sockets, timers };
}
