import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { generateDrizzleJson, generateMigration } from 'drizzle-kit/api';
import * as schema from '../src/schema/index.ts';
import { MIGRATIONS_FOLDER } from '../src/db/migrate.ts';
import { checksumProblems } from '../config/sql-functions.ts';

describe('schema and migrations', () => {
  it('drizzle/ is what drizzle-kit generates from src/schema/ (no pending migration)', async () => {
    const metaDir = path.join(MIGRATIONS_FOLDER, 'meta');
    const snapshots = readdirSync(metaDir).filter((f) => f.endsWith('_snapshot.json')).sort();
    assert.ok(snapshots.length > 0, 'drizzle/meta holds at least one snapshot');
    const last = JSON.parse(readFileSync(path.join(metaDir, snapshots.at(-1)!), 'utf8'));
    const current = generateDrizzleJson(schema as Record<string, unknown>, last.id, ['baton']);
    const statements = await generateMigration(last, current);
    assert.deepEqual(statements, [], `src/schema/ has changes without a migration; run "npm run generate":\n${statements.join('\n')}`);
  });

  it('every migration in the journal has its SQL file and snapshot', () => {
    const journal = JSON.parse(readFileSync(path.join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8'));
    for (const entry of journal.entries as { idx: number; tag: string }[]) {
      readFileSync(path.join(MIGRATIONS_FOLDER, `${entry.tag}.sql`), 'utf8');
      readFileSync(path.join(MIGRATIONS_FOLDER, 'meta', `${String(entry.idx).padStart(4, '0')}_snapshot.json`), 'utf8');
    }
  });

  it('every migration is as drizzle/checksums.json recorded it (shipped migrations are frozen)', () => {
    const problems = checksumProblems(MIGRATIONS_FOLDER);
    assert.deepEqual(problems, [], problems.join('\n'));
  });
});
