/**
 * Signed waitpoint tokens: ctx.waitpointToken / client.waitpointToken make them, an outside system
 * completes the wait with the token alone (client.completeWaitpoint, or baton.complete_waitpoint
 * with verified claims). Forged, expired, reused, malformed and closed tokens are refused with a
 * WaitpointTokenError and write nothing; of two concurrent completions exactly one wins; secrets rotate.
 */
import assert from 'node:assert/strict';
import {
  ConfigError,
  createClient,
  defineTask,
  defineWorkflow,
  loadConfig,
  WaitpointTokenError,
  type Client,
  type WaitpointRefusal,
  type Worker,
} from '../src/index.ts';
import { createLogger } from '../src/log.ts';
import { silentLogger } from '../src/log.ts';
import { runCli } from './support/cli.ts';
import { useTestDatabase } from './support/db.ts';
import { assertInvariants, until } from './support/fixtures.ts';
import { trackFixturePool } from './support/leaks.ts';
import { inProcessWorker } from './support/workers.ts';

const SECRET = 'current-secret-0123456789-abcdefghijklmnop';
const OLD = 'previous-secret-0123456789-abcdefghijklmno';
const OTHER = 'somebody-elses-secret-0123456789-abcdefghi';

const request = defineTask('wp-request', async (input: { ttl?: string }, ctx) => ({
  token: ctx.waitpointToken('approved', input.ttl ? { ttlMs: input.ttl } : {}),
}));
const approval = defineWorkflow<{ ttl?: string }>('wp-approval')
  .then(request)
  .waitForEvent<{ ok: boolean; by?: string }>('approved', { timeoutMs: 120_000 })
  .build();

const twoWaits = defineWorkflow('wp-two-waits').then(request).waitForEvent('approved', { timeoutMs: 120_000 }).waitForEvent('shipped', { timeoutMs: 120_000 }).build();

const refused = (reason: WaitpointRefusal) => (error: unknown) => {
  assert.ok(error instanceof WaitpointTokenError, String(error));
  assert.equal(error.reason, reason, error.message);
  assert.equal(error.code, 'WAITPOINT_TOKEN');
  assert.equal(error.userError, true);
  assert.ok(!error.message.includes(SECRET) && !error.message.includes(OLD), 'no secret in the message');
  return true;
};

describe('waitpoint tokens', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  const clients: Client[] = [];
  let client: Client;
  /** Clients with other secrets: OLD alone, OTHER alone, SECRET without OLD, none. */
  let old: Client, stranger: Client, dropped: Client, none: Client;
  let worker: Worker | undefined;
  const clientWith = async (config: { waitpointSecret?: string; waitpointPreviousSecrets?: string[] }) => {
    const c = await createClient({ connectionString: db.url, logger: silentLogger, config: { waitpointPreviousSecrets: [], ...config } });
    trackFixturePool(c.pool);
    await c.result('warm-up-the-listener').catch(() => undefined);
    clients.push(c);
    return c;
  };
  /** An approval instance waiting for its event, and the token its first step made. */
  const waiting = async (id: string, input: { ttl?: string } = {}) => {
    await client.start(approval, input, { id });
    const first = await until(async () => {
      const r = await client.taskResult<{ token: string }>(id, '0');
      return r?.status === 'completed' ? r.output : null;
    });
    await until(async () => (await client.taskResult(id, '1'))?.status === 'waiting', { what: 'the wait' });
    return first!.token;
  };
  const written = async (id: string) => {
    const { rows } = await db.pool.query(
      `select (select count(*) from baton.events where workflow_id = $1)::int as events,
              (select count(*) from baton.waitpoint_uses where workflow_id = $1)::int as uses,
              (select status from baton.workflows where id = $1) as status`,
      [id],
    );
    return rows[0] as { events: number; uses: number; status: string };
  };

  before(async () => {
    client = await clientWith({ waitpointSecret: SECRET, waitpointPreviousSecrets: [OLD] });
    old = await clientWith({ waitpointSecret: OLD });
    stranger = await clientWith({ waitpointSecret: OTHER });
    dropped = await clientWith({ waitpointSecret: SECRET });
    none = await clientWith({ waitpointSecret: undefined });
  });
  beforeEach(async () => {
    worker = await inProcessWorker(db.url, { workflows: [approval, twoWaits], config: { waitpointSecret: SECRET } });
  });
  afterEach(async () => {
    await worker?.stop({ graceMs: 200 });
    await assertInvariants(db.pool);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
  });

  it('a token a step made completes the wait with the payload, once; a reuse is refused and writes nothing', async () => {
    const token = await waiting('wp-1');
    assert.match(token, /^wp1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    const done = await client.completeWaitpoint(token, { ok: true, by: 'ada' });
    assert.deepEqual([done.workflowId, done.event, typeof done.eventId], ['wp-1', 'approved', 'number']);
    assert.deepEqual(await client.result('wp-1', { timeoutMs: 20_000 }), { ok: true, by: 'ada' });
    const before = await written('wp-1');
    await assert.rejects(client.completeWaitpoint(token, { ok: false }), refused('reused'));
    assert.deepEqual(await written('wp-1'), before);
  });

  it('refuses forged, altered and malformed tokens, writing nothing', async () => {
    const token = await waiting('wp-forged');
    const [prefix, body, signature] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(body, 'base64url').toString()) as Record<string, unknown>;
    const altered = `${prefix}.${Buffer.from(JSON.stringify({ ...claims, x: Date.now() + 10 * 86_400_000 })).toString('base64url')}.${signature}`;
    const foreign = stranger.waitpointToken('wp-forged', 'approved');
    await assert.rejects(client.completeWaitpoint(altered, { ok: true }), refused('forged'));
    await assert.rejects(client.completeWaitpoint(foreign, { ok: true }), refused('forged'));
    await assert.rejects(client.completeWaitpoint(`${prefix}.${body}.${'A'.repeat(43)}`, { ok: true }), refused('forged'));
    for (const bad of ['', 'abc', 'wp1.x.y', `wp2.${body}.${signature}`, `${token}.x`, `${prefix}.${body}!.${signature}`, 'wp1..', 42, null, 'x'.repeat(5000)]) {
      await assert.rejects(client.completeWaitpoint(bad as string, { ok: true }), refused('malformed'), JSON.stringify(bad));
    }
    // Signed, but not claims Baton makes.
    const { createHmac } = await import('node:crypto');
    const junk = Buffer.from('[1,2]').toString('base64url');
    const signed = `wp1.${junk}.${createHmac('sha256', SECRET).update(`wp1.${junk}`).digest('base64url')}`;
    await assert.rejects(client.completeWaitpoint(signed), refused('malformed'));
    assert.deepEqual(await written('wp-forged'), { events: 0, uses: 0, status: 'running' });
    await client.completeWaitpoint(token, { ok: true }); // the real one still works
    assert.deepEqual(await client.result('wp-forged', { timeoutMs: 20_000 }), { ok: true });
  });

  it('refuses an expired token (client clock and database clock), writing nothing', async () => {
    const token = await waiting('wp-expired', { ttl: '1s' });
    await new Promise((r) => setTimeout(r, 1_100));
    await assert.rejects(client.completeWaitpoint(token, { ok: true }), refused('expired'));
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { n: string; i: number; x: number };
    await assert.rejects(
      db.pool.query(`select baton.complete_waitpoint('wp-expired', 'approved', $1, $2, $3, '{}')`, [claims.n, new Date(claims.i), new Date(claims.x)]),
      (e: { code?: string; detail?: string }) => e.code === 'BTW01' && e.detail === 'expired',
    );
    assert.deepEqual(await written('wp-expired'), { events: 0, uses: 0, status: 'running' });
  });

  it('of concurrent completions of one token exactly one wins, and one event is delivered', async () => {
    const ids = ['wp-race-1', 'wp-race-2', 'wp-race-3'];
    const tokens = await Promise.all(ids.map((id) => waiting(id)));
    const other = dropped;
    for (const [i, id] of ids.entries()) {
      const results = await Promise.allSettled([
        client.completeWaitpoint(tokens[i]!, { ok: true, by: 'first' }),
        other.completeWaitpoint(tokens[i]!, { ok: true, by: 'second' }),
        client.completeWaitpoint(tokens[i]!, { ok: true, by: 'third' }),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      assert.equal(won.length, 1, JSON.stringify(results.map((r) => r.status)));
      for (const r of results) if (r.status === 'rejected') assert.ok(refused('reused')(r.reason));
      const output = (await client.result(id, { timeoutMs: 20_000 })) as { by: string };
      assert.equal((await written(id)).uses, 1);
      assert.ok(['first', 'second', 'third'].includes(output.by));
    }
  });

  it('rotation: a token signed with a previous secret is accepted while that secret is listed', async () => {
    await client.start(approval, {}, { id: 'wp-rotate' });
    await until(async () => (await client.taskResult('wp-rotate', '1'))?.status === 'waiting');
    const before = old.waitpointToken('wp-rotate', 'approved');
    await assert.rejects(dropped.completeWaitpoint(before, { ok: true }), refused('forged'), 'the old secret is no longer listed');
    await client.completeWaitpoint(before, { ok: true, by: 'old secret' });
    assert.deepEqual(await client.result('wp-rotate', { timeoutMs: 20_000 }), { ok: true, by: 'old secret' });
  });

  it('refuses a token whose wait already completed, or whose instance ended; writes nothing', async () => {
    // The wait it was made for completed with a plain event; the instance waits on, for another event.
    await client.start(twoWaits, {}, { id: 'wp-closed' });
    const { token } = (await until(async () => (await client.taskResult<{ token: string }>('wp-closed', '0'))?.output))!;
    await client.sendEvent('wp-closed', 'approved', { ok: true, by: 'plain event' });
    await until(async () => (await client.taskResult('wp-closed', '2'))?.status === 'waiting', { what: 'the second wait' });
    await assert.rejects(client.completeWaitpoint(token, { ok: false }), refused('closed'));
    assert.deepEqual(await written('wp-closed'), { events: 0, uses: 0, status: 'running' });
    await client.sendEvent('wp-closed', 'shipped', null);
    await client.result('wp-closed', { timeoutMs: 20_000 });

    const cancelled = await waiting('wp-cancelled');
    await client.cancel('wp-cancelled');
    await assert.rejects(client.completeWaitpoint(cancelled, { ok: true }), refused('closed'));
    assert.equal((await written('wp-cancelled')).uses, 0);
    await assert.rejects(client.completeWaitpoint(client.waitpointToken('wp-nobody', 'approved'), { ok: true }), /no workflow instance "wp-nobody"/);
  });

  it('baton complete-waitpoint <token|-> [json] completes a wait; a refused token is one line, exit 1', async () => {
    const token = await waiting('wp-cli');
    const env = { DATABASE_URL: db.url, BATON_LOG_LEVEL: 'warn', BATON_WAITPOINT_SECRET: SECRET };
    const ok = await runCli(['complete-waitpoint', '-', '{"ok":true,"by":"cli"}'], { env, input: `${token}\n` });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^delivered "approved" to wp-cli \(event \d+\)/);
    assert.deepEqual(await client.result('wp-cli', { timeoutMs: 20_000 }), { ok: true, by: 'cli' });
    const again = await runCli(['complete-waitpoint', token, '{}'], { env });
    assert.equal(again.code, 1);
    assert.match(again.stderr.trim(), /^baton: the waitpoint token was already used$/);
    const json = await runCli(['complete-waitpoint', 'nonsense', '--json'], { env });
    assert.equal(json.code, 1);
    assert.deepEqual(JSON.parse(json.stderr.trim()).code, 'WAITPOINT_TOKEN');
  });

  it('SQL: baton.complete_waitpoint delivers verified claims once', async () => {
    await client.start(approval, {}, { id: 'wp-sql' });
    await until(async () => (await client.taskResult('wp-sql', '1'))?.status === 'waiting');
    const args = ['wp-sql', 'approved', 'n-0123456789abcdef', new Date(), new Date(Date.now() + 60_000)];
    await db.pool.query(`select baton.complete_waitpoint($1, $2, $3, $4, $5, '{"ok":true,"by":"sql"}')`, args);
    assert.deepEqual(await client.result('wp-sql', { timeoutMs: 20_000 }), { ok: true, by: 'sql' });
    await assert.rejects(db.pool.query(`select baton.complete_waitpoint($1, $2, $3, $4, $5, '{}')`, args), (e: { detail?: string }) => e.detail === 'reused');
  });

  it('without a secret: no token is made or completed (ConfigError); the secret is never logged', async () => {
    assert.throws(() => none.waitpointToken('wp-1', 'approved'), ConfigError);
    await assert.rejects(none.completeWaitpoint('wp1.a.b'), ConfigError);
    await worker!.stop({ graceMs: 200 });
    worker = await inProcessWorker(db.url, { workflows: [approval], config: { waitpointSecret: undefined } });
    await client.start(approval, {}, { id: 'wp-nosecret' });
    await assert.rejects(client.result('wp-nosecret', { timeoutMs: 20_000 }), /BATON_WAITPOINT_SECRET/);

    assert.throws(() => loadConfig({ BATON_WAITPOINT_SECRET: 'short' }), (e: unknown) => e instanceof ConfigError && !e.message.includes('short'));
    const config = loadConfig({ BATON_WAITPOINT_SECRET: SECRET, BATON_WAITPOINT_PREVIOUS_SECRETS: `${OLD},${OTHER}` });
    assert.deepEqual([config.waitpointSecret, config.waitpointPreviousSecrets], [SECRET, [OLD, OTHER]]);
    const lines: string[] = [];
    createLogger({ level: 'debug', pretty: false, write: (l) => lines.push(l) }).info({ config }, 'configuration');
    assert.ok(lines.length === 1 && !lines[0]!.includes(SECRET) && !lines[0]!.includes(OLD), lines[0]);
  });
});
