/** What the CLI writes: results to stdout, messages to stderr. Injected so tests and embedding can capture it. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
  /** True when stdout is a terminal (live progress) rather than a pipe or file (plain lines). */
  isTTY: boolean;
}

export const processOutput: Output = {
  out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
  isTTY: Boolean(process.stdout.isTTY),
};
