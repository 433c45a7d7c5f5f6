import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbedded } from '../src/db/embedded.ts';
import { killChildren, killPostmasters, postmasters, query, startChild } from './support/embedded-procs.ts';
import { freePort } from './support/server.ts';

const portOf = (url: string) => Number(new URL(url).port);

describe('two projects with embedded servers on one machine', function () {
  this.timeout(180_000);
  let root: string;
  const dirs: string[] = [];

  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'baton-two-'));
    chmodSync(root, 0o755); // the data directories below it must be reachable by the server's user (root runs it as postgres)
    dirs.length = 0;
    for (const name of ['a', 'b', 'c']) dirs.push(path.join(root, name));
  });
  afterEach(async () => {
    await killChildren();
    for (const dir of dirs) await killPostmasters(path.join(dir, 'pg'));
    rmSync(root, { recursive: true, force: true });
  });

  it("the second one moves off the default port another project's server holds, records it, and its next process finds it", async () => {
    const [a, b, c] = dirs as [string, string, string];
    const port = await freePort();
    const first = await startChild(a, port, { portIsDefault: true });
    assert.equal(portOf(first.info.url), port);

    const second = await startChild(b, port, { portIsDefault: true });
    assert.equal(second.info.owner, true);
    const moved = portOf(second.info.url);
    assert.notEqual(moved, port, 'it did not fail on the taken port');
    assert.equal(Number(readFileSync(path.join(b, 'port'), 'utf8').trim()), moved, 'the port is recorded under the data directory');
    await query(second.info.url, 'select 1');

    // Another process of the second project, with the same default: it attaches to that server.
    const again = await startEmbedded({ dataDir: b, port, portIsDefault: true });
    assert.equal(again.owner, false);
    assert.equal(again.url, second.info.url);
    await again.stop();

    // A port the user chose is not silently changed.
    await assert.rejects(startEmbedded({ dataDir: c, port }), new RegExp(`port ${port} is taken; set BATON_EMBEDDED_PORT`));
    assert.deepEqual(postmasters(path.join(c, 'pg')), []);

    second.proc.stdin!.end();
    first.proc.stdin!.end();
    assert.equal(await second.exited, 0);
    assert.equal(await first.exited, 0);
    assert.deepEqual(postmasters(path.join(a, 'pg')), []);
    assert.deepEqual(postmasters(path.join(b, 'pg')), []);
  });
});
