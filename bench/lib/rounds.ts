/**
 * --repeat N: each scenario runs N times in a row, its systems in turn each
 * time (as given in odd runs, in reverse in even ones, so that none always
 * goes first), and the figures of the N runs are combined into one per
 * system and metric: the median value, and Baton's advantage as the median
 * of the advantages of the single runs. A run's systems share that run's
 * conditions, so the ratio within a run moves less than either figure does
 * across runs (this machine moves a figure by 10-20% from one run to the
 * next). Each run's value and advantage stay in the figure (`rounds`).
 */
import { advantage, type Figure } from './report.ts';
import { median } from './stats.ts';

/** The systems of run `round` (1-based) in the order they run. */
export function roundOrder<T>(systems: readonly T[], round: number): T[] {
  return round % 2 === 1 ? [...systems] : [...systems].reverse();
}

const key = (f: Figure) => `${f.scenario}\u0000${f.system}\u0000${f.metric}`;
const numbers = (values: (number | null | undefined)[]) => values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));

/**
 * The figures of several runs of one scenario as one set, in the first run's order of metrics and
 * systems. A figure missing or in error in any run is in error: a median over the runs that
 * happened to succeed would hide the failure.
 */
export function combineRounds(rounds: Figure[][]): Figure[] {
  if (rounds.length === 1) return rounds[0]!;
  const byRound = rounds.map((figures) => new Map(figures.map((f) => [key(f), f])));
  const batonOf = (round: Map<string, Figure>, f: Figure) => round.get(key({ ...f, system: 'baton' }));
  // Metrics in the order they first appear; within one, Baton first, as a single run has it (an
  // even run runs it last), then the others as they first appear.
  const byMetric = new Map<string, Map<string, Figure>>();
  for (const f of rounds.flat()) {
    const systems = byMetric.get(f.metric) ?? byMetric.set(f.metric, new Map()).get(f.metric)!;
    if (!systems.has(f.system)) systems.set(f.system, f);
  }
  const order = [...byMetric.values()].flatMap((systems) => [...systems.values()].sort((a, b) => Number(b.system === 'baton') - Number(a.system === 'baton')));
  return order.map((first) => {
    const runs = byRound.map((round) => round.get(key(first)));
    const values = runs.map((f) => f?.value ?? null);
    const combined: Figure = {
      scenario: first.scenario,
      system: first.system,
      metric: first.metric,
      better: first.better,
      value: values.every((v) => v !== null) ? median(values as number[]) : null,
      rounds: {
        values,
        advantages: first.system === 'baton' || first.derived ? undefined : byRound.map((round, i) => (runs[i] ? advantage(batonOf(round, first), runs[i]!) : null)),
      },
    };
    const rss = numbers(runs.map((f) => f?.rssMb));
    if (rss.length > 0) {
      combined.rssMb = Math.max(...rss);
      combined.rounds!.rssMb = runs.map((f) => f?.rssMb ?? null);
    }
    const cpu = numbers(runs.map((f) => f?.cpuUsPerUnit));
    if (cpu.length > 0) combined.cpuUsPerUnit = median(cpu);
    const serverCpu = numbers(runs.map((f) => f?.serverCpuUsPerUnit));
    if (serverCpu.length > 0) combined.serverCpuUsPerUnit = median(serverCpu);
    if (first.detail) combined.detail = first.detail;
    if (first.derived) combined.derived = true;
    if (first.unsupported) combined.unsupported = first.unsupported;
    const failed = runs.findIndex((f) => f === undefined || f.error !== undefined);
    if (failed >= 0) combined.error = `run ${failed + 1}: ${runs[failed]?.error ?? 'no figure'}`;
    return combined;
  });
}
