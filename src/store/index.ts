/** Every SQL statement Baton runs lives under src/store/; each function takes an executor first. */
export * from './executor.ts';
export * from './definitions.ts';
export * from './instances.ts';
export * from './claims.ts';
export * from './commit.ts';
export * from './signals.ts';
export * from './events.ts';
export * from './history.ts';
export * from './tasks.ts';
export * from './workers.ts';
export * from './maintenance.ts';
export * from './check.ts';
export * from './retry.ts';
