// npm run chaos [-- --short] [-- --only kill,stop]: every fault scenario on a fresh fleet;
// prints a table and writes test/chaos/results/latest.json (used by RELIABILITY.md).
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FULL, SHORT, runScenario, scenarios, type ScenarioResult } from './scenarios.ts';

const args = process.argv.slice(2);
const size = args.includes('--short') ? SHORT : FULL;
const onlyArg = args.find((a) => a.startsWith('--only='))?.slice(7) ?? (args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined);
const names = onlyArg ? onlyArg.split(',') : Object.keys(scenarios);
const results: ScenarioResult[] = [];
for (const name of names) {
  const t0 = Date.now();
  const r = await runScenario(name, size, (line) => process.stderr.write(`  ${line}\n`));
  results.push(r);
  const ok = r.unfinished.length === 0 && r.wrong.length === 0 && r.violations.length === 0;
  process.stderr.write(`${ok ? 'ok  ' : 'FAIL'} ${name} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
  if (!ok) process.stderr.write(`${JSON.stringify({ unfinished: r.unfinished.slice(0, 5), wrong: r.wrong.slice(0, 5), violations: r.violations.slice(0, 5) }, null, 2)}\n`);
}
const rows = results.map((r) => [
  r.scenario,
  String(r.workflows),
  `${(r.settledMs / 1000).toFixed(1)} s`,
  String(r.unfinished.length + r.wrong.length),
  String(r.violations.length),
  String(r.crashes),
  String(r.refusals),
  r.recovery ? `${r.recovery.p50Ms} / ${r.recovery.maxMs} ms (${r.recovery.samples})` : '',
]);
const head = ['scenario', 'workflows', 'settled in', 'wrong', 'violations', 'crashes', 'refused', 'kill->running p50/max'];
const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
console.log([head, ...rows].map((r) => r.map((c, i) => c.padEnd(w[i]!)).join('  ')).join('\n'));
for (const r of results) console.log(`${r.scenario}: ${JSON.stringify(r.notes)}`);
const dir = path.join(path.dirname(new URL(import.meta.url).pathname), 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(path.join(dir, 'latest.json'), JSON.stringify({ at: new Date().toISOString(), size, results }, null, 2));
process.exit(results.every((r) => r.unfinished.length === 0 && r.wrong.length === 0 && r.violations.length === 0) ? 0 : 1);
