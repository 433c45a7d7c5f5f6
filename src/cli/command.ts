import type { Output } from './output.ts';

export interface Command {
  /** Arguments after the command name, for the usage line. */
  usage: string;
  summary: string;
  run(args: string[], output: Output): Promise<number | void>;
}
