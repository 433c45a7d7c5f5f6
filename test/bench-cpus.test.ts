import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { allowedCpus, CpuSplitError, parseCpuList, splitCpus } from '../bench/lib/cpus.ts';
import { parseArgs, UsageError } from '../bench/lib/args.ts';
import { childProcesses } from '../bench/lib/proc.ts';

const childrenOf = (pid: number) => childProcesses(pid).map((c) => c.pid);

describe('bench: --server-cpus (the server on some CPUs, the bench on the others)', function () {
  this.timeout(30_000);

  it('reads CPU lists, and refuses what is not one', () => {
    assert.deepEqual(parseCpuList('0'), [0]);
    assert.deepEqual(parseCpuList('2,0-1, 1'), [0, 1, 2]);
    assert.deepEqual(parseCpuList('4-6'), [4, 5, 6]);
    assert.throws(() => parseCpuList('a'), CpuSplitError);
    assert.throws(() => parseCpuList('3-1'), /ends before it starts/);
    assert.throws(() => parseCpuList(''), CpuSplitError);
    assert.deepEqual(parseArgs(['--server-cpus', '0']).serverCpus, [0]);
    assert.equal(parseArgs([]).serverCpus, undefined);
    assert.throws(() => parseArgs(['--server-cpus', '0-x']), UsageError);
    assert.throws(() => parseArgs(['--server-cpus']), UsageError);
  });

  describe('on a process tree standing in for the postmaster', () => {
    let tree: ChildProcess | undefined;
    afterEach(() => {
      tree?.kill('SIGKILL');
      tree = undefined;
    });

    it('puts the process and its children on the server CPUs, this process on the rest, and gives all of them back', async function () {
      if (process.platform !== 'linux') this.skip();
      const mine = allowedCpus(process.pid);
      if (mine.length < 2) this.skip(); // nothing to split on one CPU
      tree = spawn('sh', ['-c', 'sleep 30 & sleep 30 & wait'], { stdio: 'ignore' });
      const root = tree.pid!;
      for (let i = 0; i < 50 && childrenOf(root).length < 2; i++) await new Promise((r) => setTimeout(r, 20));
      const kids = childrenOf(root);
      assert.equal(kids.length, 2, 'the stand-in has two children');
      const before = allowedCpus(root);

      const split = splitCpus(root, [mine[0]!]);
      try {
        assert.deepEqual(split.serverCpus, [mine[0]]);
        assert.deepEqual(split.benchCpus, mine.slice(1));
        for (const pid of [root, ...kids]) assert.deepEqual(allowedCpus(pid), [mine[0]], `process ${pid} is on the server CPU`);
        assert.deepEqual(allowedCpus(process.pid), mine.slice(1), 'the bench is on the other CPUs');
        assert.match(split.describe, new RegExp(`server on CPU ${mine[0]}, bench and workers on CPU ${mine.slice(1).join(',')}`));
      } finally {
        split.restore();
      }
      for (const pid of [root, ...kids]) assert.deepEqual(allowedCpus(pid), before, `process ${pid} has its CPUs back`);
      assert.deepEqual(allowedCpus(process.pid), mine, 'the bench has its CPUs back');
    });

    it('refuses a split that leaves the bench no CPU, a CPU it may not use, or a server that is not here, and pins nothing', async function () {
      if (process.platform !== 'linux') this.skip();
      const mine = allowedCpus(process.pid);
      tree = spawn('sleep', ['30'], { stdio: 'ignore' });
      const before = allowedCpus(tree.pid!);
      assert.throws(() => splitCpus(tree!.pid!, mine), /leaves no CPU for the bench/);
      assert.throws(() => splitCpus(tree!.pid!, [Math.max(...mine) + 1]), /which this process may not use/);
      assert.throws(() => splitCpus(undefined, [mine[0]!]), /on this machine/);
      assert.deepEqual(allowedCpus(tree.pid!), before);
      assert.deepEqual(allowedCpus(process.pid), mine);
    });
  });
});
