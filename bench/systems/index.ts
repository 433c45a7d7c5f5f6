/** The systems under test, by name. Each module is loaded only when used. */
import type { System, SystemName } from './types.ts';

export async function loadSystem(name: SystemName): Promise<System> {
  switch (name) {
    case 'baton':
      return (await import('./baton.ts')).baton;
    case 'graphile':
      return (await import('./graphile.ts')).graphile('defaults');
    case 'graphile-batched':
      return (await import('./graphile.ts')).graphile('batched');
    case 'pgboss':
      return (await import('./pgboss.ts')).pgboss;
    case 'raw':
      return (await import('./raw.ts')).raw;
    default:
      throw new Error(`unknown system ${String(name)}`);
  }
}
