/**
 * --alloc-profile: what a worker child allocates, from V8's sampling heap profiler with the objects
 * the garbage collector already took counted too (so it is what was allocated, not what is live).
 * A drain's bytes per unit come out within a fraction of a percent from run to run, where its
 * worker CPU moves by 10%: the figure to read an A/B of a worker-side change by. The profile (a
 * .heapprofile, for Chrome DevTools' Memory tab) is written beside the CPU profiles.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Session } from 'node:inspector/promises';

interface SamplingNode {
  selfSize: number;
  children: SamplingNode[];
}

function totalBytes(node: SamplingNode): number {
  return node.children.reduce((sum, child) => sum + totalBytes(child), node.selfSize);
}

/** Starts sampling; the returned function stops it, writes the profile and returns the bytes allocated since. */
export async function sampleAllocations(dir: string): Promise<() => Promise<{ bytes: number; file: string }>> {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return async () => {
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as { profile: { head: SamplingNode } };
    session.disconnect();
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `alloc-${process.pid}.heapprofile`);
    writeFileSync(file, JSON.stringify(profile));
    return { bytes: totalBytes(profile.head), file };
  };
}
