/** `baton --help`, `<command> --help`, `--version` and the README's command table: no database needed. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { commands } from '../src/cli/commands.ts';
import { main } from '../src/cli/main.ts';
import type { Output } from '../src/cli/output.ts';
import { runCli } from './support/cli.ts';
import { ROOT } from './support/server.ts';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const output: Output = { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`), progress: () => undefined };
  const code = await main(argv, output);
  return { code, out, err };
}

describe('baton help and version', () => {
  it('--version prints the version from package.json', async () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = await runCli(['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), pkg.version);
  });

  it('each command\'s --help lists every option it accepts, with a description, in the usage line too', async () => {
    for (const name of Object.keys(commands)) {
      const help = await run(name, '--help');
      assert.equal(help.code, 0);
      const [usageLine] = help.out.split('\n');
      // The options the parser accepts, as its own error for an unknown one lists them.
      const refused = await run(name, '--no-such-option');
      assert.equal(refused.code, 2, `${name}: ${refused.err}`);
      const accepted = /its options: ([^)]*)\)/.exec(refused.err)?.[1]?.split(', ') ?? [];
      assert.ok(accepted.includes('--json'), `${name} takes --json: ${refused.err}`);
      for (const flag of accepted) {
        assert.ok(usageLine!.includes(`[${flag}`), `${name}: ${flag} in the usage line: ${usageLine}`);
        assert.match(help.out, new RegExp(`^ {2}${flag}( \\S+)? {2,}\\S.{10,}$`, 'm'), `${name}: ${flag} described in --help:\n${help.out}`);
      }
    }
    assert.match((await run('worker', '--help')).out, /--prefetch N +tasks claimed ahead/);
  });

  it("the README's command table has a row for every command, naming each of its options", () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const rows = readme.split('\n').filter((l) => l.startsWith('| `baton '));
    for (const [name, command] of Object.entries(commands)) {
      const row = rows.find((r) => r.startsWith(`| \`baton ${name}`));
      assert.ok(row, `README: no row for baton ${name}`);
      for (const option of Object.keys(command.options)) {
        if (option === 'json' || option === 'sizes') continue; // "Every command takes --json"; --sizes is --size's other spelling
        assert.ok(row.includes(`--${option}`), `README: baton ${name} row lacks --${option}: ${row}`);
      }
    }
  });
});
