/**
 * Steps of the rolling-deploy test's workflow. Each returns which step it was, which code ran it
 * ("old" or "new": the two worker directories beside this file) and which process, so the test
 * can prove what ran where from the task rows alone.
 */
import { defineTask, type Task } from '../../src/index.ts';

export interface StepDone {
  step: string;
  code: 'old' | 'new';
  pid: number;
}

const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    });
  });

export function deployStep(code: StepDone['code'], name: string, ms: number): Task<unknown, StepDone> {
  return defineTask(`deploy-${name}`, async (_input: unknown, ctx) => {
    await pause(ms, ctx.signal);
    return { step: name, code, pid: process.pid };
  });
}
