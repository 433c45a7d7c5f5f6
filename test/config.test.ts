import assert from 'node:assert/strict';
import { defaults, loadConfig } from '../src/config.ts';
import { ConfigError } from '../src/errors.ts';
import { runCli } from './support/cli.ts';

describe('configuration', () => {
  it('uses the defaults when the environment says nothing', () => {
    const config = loadConfig({});
    assert.deepEqual(config, defaults);
    assert.equal(config.embedded.portIsDefault, true);
  });

  it('reads overrides from the environment', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://u@127.0.0.1:5432/db',
      BATON_CONCURRENCY: '32',
      BATON_TAGS: 'gpu, eu ,gpu',
      BATON_CLAIM_TTL_MS: '5000',
      BATON_EMBEDDED_PORT: '6000',
      BATON_METRICS_PORT: '9464',
      BATON_METRICS_HOST: '0.0.0.0',
    });
    assert.equal(config.metricsPort, 9464);
    assert.equal(config.metricsHost, '0.0.0.0');
    assert.equal(config.databaseUrl, 'postgres://u@127.0.0.1:5432/db');
    assert.equal(config.concurrency, 32);
    assert.deepEqual(config.tags, ['eu', 'gpu']);
    assert.equal(config.claimTtlMs, 5000);
    assert.equal(config.embedded.port, 6000);
    assert.equal(config.embedded.portIsDefault, false, 'a port the user chose is never moved');
  });

  const bad: [Record<string, string>, string, RegExp][] = [
    [{ BATON_CONCURRENCY: 'abc' }, 'BATON_CONCURRENCY', /BATON_CONCURRENCY must be a whole number from 1 to 1000 \(got "abc"\)/],
    [{ BATON_CONCURRENCY: '0' }, 'BATON_CONCURRENCY', /from 1 to 1000 \(got "0"\)/],
    [{ BATON_CONCURRENCY: '2.5' }, 'BATON_CONCURRENCY', /whole number/],
    [{ BATON_CLAIM_TTL_MS: '-5' }, 'BATON_CLAIM_TTL_MS', /BATON_CLAIM_TTL_MS must be a duration in milliseconds from 300/],
    [{ BATON_RECONCILE_INTERVAL_MS: '5000' }, 'BATON_RECONCILE_INTERVAL_MS', /from 50 to 2000/],
    [{ DATABASE_URL: 'not a url' }, 'DATABASE_URL', /DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL/],
    [{ DATABASE_URL: 'mysql://u@h/db' }, 'DATABASE_URL', /got scheme "mysql"/],
    [{ BATON_TAGS: 'gpu,bell\u0007' }, 'BATON_TAGS', /BATON_TAGS must be a comma-separated list/],
    [{ BATON_EMBEDDED_PORT: '80' }, 'BATON_EMBEDDED_PORT', /a TCP port from 1024 to 65535/],
    [{ BATON_LOG_LEVEL: 'loud' }, 'BATON_LOG_LEVEL', /BATON_LOG_LEVEL must be one of/],
    [{ BATON_METRICS_PORT: 'http' }, 'BATON_METRICS_PORT', /BATON_METRICS_PORT must be a TCP port from 1 to 65535 \(got "http"\)/],
    [{ BATON_METRICS_PORT: '70000' }, 'BATON_METRICS_PORT', /from 1 to 65535/],
    [{ BATON_METRICS_HOST: 'http://0.0.0.0/' }, 'BATON_METRICS_HOST', /BATON_METRICS_HOST must be a host name or IP address/],
  ];
  for (const [env, variable, message] of bad) {
    it(`rejects ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')} with a message that names the variable`, () => {
      assert.throws(() => loadConfig(env), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.variable, variable);
        assert.match(error.message, message);
        return true;
      });
    });
  }

  it('stops the CLI at start-up with one line and exit code 1, no stack trace', async () => {
    for (const env of [{ BATON_CONCURRENCY: 'abc' }, { BATON_CLAIM_TTL_MS: '-1' }, { DATABASE_URL: '::nope::' }]) {
      const result = await runCli(['migrate'], { env });
      assert.equal(result.code, 1, result.stderr);
      assert.equal(result.stdout, '');
      const lines = result.stderr.trim().split('\n');
      assert.equal(lines.length, 1, result.stderr);
      assert.match(lines[0]!, new RegExp(`^baton: ${Object.keys(env)[0]} must be`));
      assert.doesNotMatch(result.stderr, /\n\s+at /);
    }
  });
});
