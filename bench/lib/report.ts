/**
 * Results: one Figure per (scenario, system, metric), printed as a table per
 * scenario with the ratio against Baton, and saved as JSON under
 * bench/results/ (<timestamp>.json and latest.json).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PgStatsReport } from './pgstats.ts';
import { fmt, median } from './stats.ts';

export interface Figure {
  scenario: string;
  /** The system, or a variant of it ("baton@1M"). */
  system: string;
  metric: string;
  value: number | null;
  /** Which way is better, for the ratio against Baton. */
  better: 'higher' | 'lower';
  /** Peak RSS of the worker process(es) in MB (the largest one when there are several). */
  rssMb?: number;
  /** CPU time of the worker process(es) over the measured run, µs per unit of the server-time report (job, step, task): user + system, from /proc. */
  cpuUsPerUnit?: number;
  /** CPU time of the whole PostgreSQL server over the same span, µs per unit, from /proc (only when it runs on this machine). */
  serverCpuUsPerUnit?: number;
  detail?: Record<string, unknown>;
  error?: string;
  /** The system cannot do what the metric measures (why): printed as "not supported", not an error. */
  unsupported?: string;
  /** A derived figure (a ratio): not compared against Baton. */
  derived?: boolean;
  /** With --repeat: each run's value and, for a peer, Baton's advantage in that run (see lib/rounds.ts). */
  rounds?: { values: (number | null)[]; advantages?: (number | null)[]; rssMb?: (number | null)[] };
}

export interface ScenarioTitle {
  id: string;
  title: string;
  /** Extra lines printed under the table (targets, notes). */
  notes: string[];
}

export const RESULTS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'results');

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

/** baton's figure divided by the other's, oriented so that > 1 means Baton does better. */
export function advantage(baton: Figure | undefined, other: Figure): number | null {
  if (other.derived || baton?.derived) return null;
  if (!baton || baton.value === null || other.value === null || baton.value === 0 || other.value === 0) return null;
  return baton.better === 'higher' ? baton.value / other.value : other.value / baton.value;
}

/** Baton's advantage over `other` as printed: with --repeat, the median of the single runs' advantages. */
function shownAdvantage(baton: Figure | undefined, other: Figure): number | null {
  const perRun = other.rounds?.advantages;
  if (!perRun) return advantage(baton, other);
  return perRun.every((a) => a !== null) ? median(perRun as number[]) : null;
}

export function renderTable(scenario: ScenarioTitle, figures: Figure[]): string {
  const lines = [`${scenario.id} ${scenario.title}`];
  const metrics = [...new Set(figures.map((f) => f.metric))];
  for (const metric of metrics) {
    const rows = figures.filter((f) => f.metric === metric);
    const baton = rows.find((f) => f.system === 'baton');
    const advs = rows.map((f) => (f.system === 'baton' ? null : shownAdvantage(baton, f)));
    const withRss = rows.some((f) => f.rssMb !== undefined);
    const withCpu = rows.some((f) => f.cpuUsPerUnit !== undefined);
    const withServerCpu = rows.some((f) => f.serverCpuUsPerUnit !== undefined);
    const withAdv = advs.some((a) => a !== null);
    const header = ['system', metric, ...(withRss ? ['peak RSS MB'] : []), ...(withCpu ? ['worker CPU µs/unit'] : []),
      ...(withServerCpu ? ['server CPU µs/unit'] : []), ...(withAdv ? ['baton advantage'] : [])];
    const body = rows.map((f, i) => [
      f.system,
      f.error ? `error: ${f.error.slice(0, 60)}` : f.unsupported ? `not supported (${f.unsupported})` : fmt(f.value),
      ...(withRss ? [fmt(f.rssMb, 0)] : []),
      ...(withCpu ? [f.cpuUsPerUnit === undefined ? '' : fmt(f.cpuUsPerUnit, 0)] : []),
      ...(withServerCpu ? [f.serverCpuUsPerUnit === undefined ? '' : fmt(f.serverCpuUsPerUnit, 0)] : []),
      ...(withAdv ? [advs[i] === null ? '' : `${fmt(advs[i], 2)}x`] : []),
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
    lines.push(`  ${header.map((h, i) => pad(h, widths[i]!, i > 0)).join('  ')}`);
    for (const r of body) lines.push(`  ${r.map((c, i) => pad(c, widths[i]!, i > 0)).join('  ')}`);
    for (const f of rows) {
      const adv = f.system === 'baton' ? null : shownAdvantage(baton, f);
      if (adv === null) continue;
      const ratio = f.better === 'higher' ? `baton / ${f.system}` : `${f.system} / baton`;
      const runs = f.rounds?.advantages;
      const spread = runs ? `; median of ${runs.length} runs: ${runs.map((a) => `${fmt(a, 2)}x`).join(', ')}` : '';
      lines.push(`    ${ratio} = ${fmt(adv, 2)}x (${metric}, ${f.better} is better${spread})`);
    }
  }
  lines.push(...scenario.notes.map((n) => `  ${n}`));
  return lines.join('\n');
}

export interface RunRecord {
  startedAt: string;
  finishedAt: string;
  command: string[];
  machine: { cpus: number; cpuModel: string; memoryGb: number; node: string; postgres: string; embedded: boolean; loadAverage: number[]; serverCpus?: number[]; benchCpus?: number[] };
  options: unknown;
  systems: Record<string, string>;
  scenarios: ScenarioTitle[];
  figures: Figure[];
  /** With --pg-stats: server time per unit by statement, per scenario and system. */
  pgStats?: PgStatsReport[];
}

export async function saveResults(record: RunRecord): Promise<string> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const stamp = record.startedAt.replace(/[:.]/g, '-');
  const file = path.join(RESULTS_DIR, `${stamp}.json`);
  const text = `${JSON.stringify(record, null, 2)}\n`;
  await writeFile(file, text);
  await writeFile(path.join(RESULTS_DIR, 'latest.json'), text);
  return file;
}

export function machine(postgres: string, embedded: boolean): RunRecord['machine'] {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    postgres,
    embedded,
    /** Other load on the machine skews the figures: recorded at the end of the run. */
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}
