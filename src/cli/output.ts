/** What the CLI writes: results to stdout, messages to stderr. Injected so tests and embedding can capture it. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
  /**
   * Live progress on stderr: one line, redrawn in place, when stderr is a
   * terminal; nothing at all when it is a pipe or a file. `null` ends the
   * line (the cursor moves on to the next one) if one was drawn.
   */
  progress(line: string | null): void;
}

const line = (text: string) => (text.endsWith('\n') ? text : `${text}\n`);

/** Progress drawn in place on a terminal (`\r`, clear the line, no newline). */
export function terminalProgress(stream: { write(text: string): unknown; isTTY?: boolean; columns?: number }): Output['progress'] {
  let shown = false;
  return (text) => {
    if (!stream.isTTY) return;
    if (text === null) {
      if (shown) stream.write('\n');
      shown = false;
      return;
    }
    // A line wider than the terminal wraps, and `\r` would then redraw only its last row.
    const width = stream.columns && stream.columns > 1 ? stream.columns - 1 : Infinity;
    stream.write(`\r\x1b[2K${text.length > width ? text.slice(0, width) : text}`);
    shown = true;
  };
}

export const processOutput: Output = {
  out: (text) => process.stdout.write(line(text)),
  err: (text) => process.stderr.write(line(text)),
  progress: terminalProgress(process.stderr),
};
