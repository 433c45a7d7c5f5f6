/**
 * What a worker writes and says when it starts: its definitions and its own row (each retried
 * over a lost connection), and the names it logs for its definitions.
 */
import os from 'node:os';
import type pg from 'pg';
import { retryTransient } from '../db/transient.ts';
import { registerDefinitions } from '../store/definitions.ts';
import { registerWorker } from '../store/workers.ts';
import type { Logger } from '../types.ts';
import type { Workflow } from '../workflow/builder.ts';
import { definitionRecord } from '../workflow/definition.ts';

export interface Announcement {
  id: string;
  tags: string[];
  concurrency: number;
  definitions: Workflow[];
  schedules: string[];
}

/** Registers the definitions, then the worker; each is retried over a lost connection. */
export async function announceWorker(pool: pg.Pool, me: Announcement, log: Logger): Promise<void> {
  const again = (error: unknown) => log.warn({ err: error }, 'database connection lost while starting; retrying');
  await retryTransient(() => registerDefinitions(pool, me.definitions.map(definitionRecord)), 8, again);
  const row = {
    id: me.id,
    host: os.hostname(),
    pid: process.pid,
    tags: me.tags,
    concurrency: me.concurrency,
    definitions: me.definitions.map((d) => d.hash),
    schedules: me.schedules,
  };
  await retryTransient(() => registerWorker(pool, row), 8, again);
}

/** `name@hash8`, with ` vN` after the name when the version is not 1: what the start-up line lists. */
export function definitionLabels(defs: Iterable<Workflow>): string[] {
  return [...defs].map((d) => `${d.name}${d.version === 1 ? '' : ` v${d.version}`}@${d.hash.slice(0, 8)}`);
}
