/** A sleep that anyone may cut short: the fetch loop waits on it for a notification, a freed slot or a stop. */
export class Waker {
  private wakeUp: (() => void) | undefined;

  /** Resolves after `ms`, or at the next wake(), whichever comes first; no timer outlives it. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = done;
    });
  }

  /** End the current sleep, if any (a wake with nobody asleep is dropped: the loop checks its state first). */
  wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }
}
