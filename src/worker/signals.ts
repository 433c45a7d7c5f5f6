import { guardStdio } from '../log.ts';

/**
 * SIGINT/SIGTERM for a worker process: the first asks for a graceful stop,
 * the next one (while that runs) forces it. Returns the function that removes
 * the handlers. Such a process owns its stdio: a log pipe that breaks (its
 * reader died on the same Ctrl-C) must not crash it mid-stop.
 */
export function onStopSignals(graceful: () => boolean, force: () => void): () => void {
  guardStdio();
  let asked = false;
  const handler = (signal: NodeJS.Signals) => {
    if (!asked) asked = graceful();
    else force();
    void signal;
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
  };
}
