/** start, enqueue, status, list, history, cancel, pause, resume, send. */
import type { Client, InstanceView, StartOptions } from '../../client/client.ts';
import { BatonError, NotFoundError, TimeoutError, UsageError, ValidationError } from '../../errors.ts';
import { silentLogger } from '../../log.ts';
import { isFinished, isOneOf, WORKFLOW_STATUSES, type DefinitionKind } from '../../types.ts';
import { intOption, parse, parseJsonArg } from '../args.ts';
import { jsonOption, type Command } from '../command.ts';
import { historyTable, listTable, progressLine, safe, statusText } from '../format.ts';
import type { Output } from '../output.ts';

export async function withClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  // Loaded here, not at start-up: `baton --help` must not pay for the driver and the store.
  const { createClient } = await import('../../client/client.ts');
  const client = await createClient({ logger: silentLogger });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

const json = (value: unknown) => JSON.stringify(value, null, 2);

/** --wait --timeout ran out: a plain outcome for the person at the terminal (exit 1, one line). */
class StillRunning extends BatonError {
  constructor(message: string) {
    super('TIMEOUT', message);
  }
}

const startFlags = {
  id: { type: 'string', value: 'ID', help: 'the instance id (default: a generated one)' },
  priority: { type: 'string', value: 'N', help: '0 to 1000000, lower runs first (default: each task\'s own)' },
  tags: { type: 'string', value: 'a,b', help: 'labels on the instance, shown by status' },
  'on-conflict': { type: 'string', value: 'MODE', help: 'when the id is taken: fail (default), useExisting, or terminateExisting (cancel it, start anew)' },
  'limit-key': { type: 'string', value: 'KEY', help: 'the key of first steps whose concurrency or rate limit counts per key (required for those)' },
  wait: { type: 'boolean', help: 'follow it until it ends and print its output (exit 1 if it fails)' },
  timeout: { type: 'string', value: 'MS', help: 'with --wait: give up after this many milliseconds (exit 1; the instance goes on)' },
  json: jsonOption,
} as const;

function startOptions(values: Record<string, string | boolean | undefined>): StartOptions {
  const o: StartOptions = {};
  if (values.id !== undefined) o.id = String(values.id);
  if (values.priority !== undefined) o.priority = intOption(String(values.priority), 'priority', 0, 1_000_000)!;
  if (values.tags !== undefined) o.tags = String(values.tags).split(',').map((t) => t.trim()).filter(Boolean);
  if (values['on-conflict'] !== undefined) o.onConflict = values['on-conflict'] as StartOptions['onConflict'];
  if (values['limit-key'] !== undefined) o.limitKey = String(values['limit-key']);
  return o;
}

/**
 * Follow an instance until it ends: on a terminal, one progress line on stderr
 * redrawn in place (the elapsed time ticking); in a pipe or a file, nothing.
 * The end is awaited with LISTEN; the line is refreshed four times a second.
 */
async function follow(client: Client, id: string, output: Output, timeoutMs: number | undefined, quiet: boolean): Promise<InstanceView> {
  const done = client.result(id, timeoutMs === undefined ? {} : { timeoutMs }).then(
    () => null,
    (error: unknown) => error,
  );
  let finished = false;
  void done.then(() => (finished = true));
  try {
    for (;;) {
      const view = await client.get(id);
      if (!view) throw new NotFoundError(`no workflow instance "${id}"`);
      if (!quiet) output.progress(progressLine(view));
      if (finished || isFinished(view.status)) {
        const error = await done;
        if (error instanceof TimeoutError) throw new StillRunning(error.message);
        return (await client.get(id))!;
      }
      await Promise.race([done, new Promise((r) => setTimeout(r, 250))]);
    }
  } finally {
    if (!quiet) output.progress(null);
  }
}

function report(view: InstanceView, output: Output, asJson: boolean): number {
  if (asJson) output.out(json(view));
  else if (view.status === 'completed') output.out(json(view.output));
  else output.err(`baton: workflow ${safe(view.id)} ${view.status}: ${safe((view.error as { message?: string } | null)?.message ?? 'no error recorded')}`);
  return view.status === 'completed' ? 0 : 1;
}

function startCommand(kind: DefinitionKind): Command {
  const noun = kind === 'task' ? 'task' : 'workflow';
  return {
    args: `<${noun}> <json>`,
    options: startFlags,
    summary: kind === 'task' ? 'enqueue a one-task job' : 'start a workflow instance',
    async run(args, output) {
      const { values, positionals } = parse(args, startFlags, { names: [noun, 'json'], min: 1 });
      // A forgotten input would start with null and fail later inside a handler: say "null" to mean it.
      if (positionals[1] === undefined) throw new UsageError(`missing <json>: the ${noun} input, as JSON (null for none)`);
      const input = parseJsonArg(positionals[1], 'the input');
      const options = startOptions(values);
      const timeoutMs = intOption(values.timeout, 'timeout', 1, 365 * 86_400_000);
      if (timeoutMs !== undefined && !values.wait) throw new ValidationError('--timeout goes with --wait');
      return withClient(async (client) => {
        const started = kind === 'task' ? await client.enqueue(positionals[0]!, input, options) : await client.start(positionals[0]!, input, options);
        if (!values.wait) {
          if (values.json) output.out(json({ id: started.id, created: started.created }));
          else output.out(started.created ? started.id : `${started.id} (already existed)`);
          return 0;
        }
        if (!values.json) output.err(started.created ? `started ${safe(started.id)}` : `${safe(started.id)} already exists; following it`);
        const view = await follow(client, started.id, output, timeoutMs, Boolean(values.json));
        return report(view, output, Boolean(values.json));
      });
    },
  };
}

export const startCommandDef = startCommand('workflow');
export const enqueueCommand = startCommand('task');

const statusFlags = {
  watch: { type: 'boolean', help: 'follow it live until it ends, then print its status' },
  task: { type: 'string', value: 'KEY', help: "only this task's status and output (keys as status lists them), without loading the rest" },
  json: jsonOption,
} as const;

/** `status <id> --task <key>`: the task's output when it completed, else one line with its status. */
async function printTaskResult(client: Client, id: string, key: string, output: Output, asJson: boolean): Promise<number> {
  const result = await client.taskResult(id, key);
  if (!result) throw new NotFoundError(`no task "${key}" in workflow instance "${id}"`);
  if (asJson) output.out(json(result));
  else if (result.status === 'completed') output.out(json(result.output));
  else {
    const why = result.error ? `: ${safe(result.error.message)}` : '';
    output.out(`task ${safe(key)} of ${safe(id)} is ${result.status} (attempts: ${result.attempts})${why}`);
  }
  return 0;
}

export const statusCommand: Command = {
  args: '<id>',
  options: statusFlags,
  summary: "an instance's status, steps, attempts and errors (--watch follows it live)",
  async run(args, output) {
    const { values, positionals } = parse(args, statusFlags, { names: ['id'], min: 1 });
    const id = positionals[0]!;
    if (values.task !== undefined && values.watch) throw new UsageError('--task does not go with --watch');
    return withClient(async (client) => {
      if (values.task !== undefined) return printTaskResult(client, id, String(values.task), output, Boolean(values.json));
      if (values.watch) {
        const view = await follow(client, id, output, undefined, Boolean(values.json));
        if (values.json) output.out(json(view));
        else output.out(statusText(view));
        return 0;
      }
      const view = await client.get(id);
      if (!view) throw new NotFoundError(`no workflow instance "${id}"`);
      output.out(values.json ? json(view) : statusText(view));
      return 0;
    });
  },
};

const listFlags = {
  status: { type: 'string', value: 'S', help: `only instances with this status: ${WORKFLOW_STATUSES.join(', ')}` },
  name: { type: 'string', value: 'WORKFLOW', help: 'only instances of this workflow (or task)' },
  limit: { type: 'string', value: 'N', help: 'at most this many, 1 to 1000 (default 20)' },
  cursor: { type: 'string', value: 'C', help: 'the next page: the cursor printed after a full page' },
  json: jsonOption,
} as const;

export const listCommand: Command = {
  args: '',
  options: listFlags,
  summary: 'instances, newest first',
  async run(args, output) {
    const { values } = parse(
      args,
      listFlags,
      { names: [], min: 0 },
    );
    const status = values.status;
    if (status !== undefined && !isOneOf(WORKFLOW_STATUSES, status)) {
      throw new ValidationError(`--status must be one of ${WORKFLOW_STATUSES.join(', ')} (got "${status}")`);
    }
    const limit = intOption(values.limit, 'limit', 1, 1000) ?? 20;
    return withClient(async (client) => {
      const page = await client.list({
        limit,
        ...(status ? { status } : {}),
        ...(values.name ? { name: values.name } : {}),
        ...(values.cursor ? { cursor: values.cursor } : {}),
      });
      if (values.json) output.out(json(page));
      else {
        output.out(page.items.length ? listTable(page.items) : 'no instances');
        if (page.next) output.out(`\nmore: baton list --cursor ${page.next}`);
      }
      return 0;
    });
  },
};

export const historyCommand: Command = {
  args: '<id>',
  options: { json: jsonOption },
  summary: 'every checkpoint of an instance',
  async run(args, output) {
    const { values, positionals } = parse(args, { json: jsonOption }, { names: ['id'], min: 1 });
    return withClient(async (client) => {
      const entries = await client.history(positionals[0]!);
      output.out(values.json ? json(entries) : historyTable(entries));
      return 0;
    });
  },
};

const cancelFlags = {
  reason: { type: 'string', value: 'TEXT', help: 'why, recorded as the instance\'s error (default: "cancelled from the command line")' },
  by: { type: 'string', value: 'WHO', help: 'who asked, recorded with it (default: cli)' },
  compensate: { type: 'boolean', help: 'undo the completed steps first (their compensations run, latest first); it ends compensated' },
  json: jsonOption,
} as const;

export const cancelCommand: Command = {
  args: '<id>',
  options: cancelFlags,
  summary: 'cancel an instance and its running children',
  async run(args, output) {
    const { values, positionals } = parse(args, cancelFlags, { names: ['id'], min: 1 });
    const id = positionals[0]!;
    return withClient(async (client) => {
      const compensate = values.compensate === true;
      const was = await client.cancel(id, { reason: values.reason ?? 'cancelled from the command line', requestedBy: values.by ?? 'cli', compensate });
      // With --compensate the instance runs on (running, or paused) until a worker has undone what completed
      // (or found nothing to undo): report the row's status, not a guess.
      const now = was === 'cancelled' ? was : ((await client.get(id))?.status ?? 'cancelled');
      if (values.json) output.out(json({ id, status: now, was, compensate }));
      else if (was === 'cancelled') output.out(`${safe(id)} was already cancelled`);
      else if (compensate && now !== 'cancelled') output.out(`cancelling ${safe(id)} (was ${was}): its completed steps, if any, are being compensated`);
      else output.out(`cancelled ${safe(id)} (was ${was})`);
      return 0;
    });
  },
};

export const pauseCommand: Command = {
  args: '<id>',
  options: { json: jsonOption },
  summary: 'pause an instance: running steps finish, nothing new starts',
  async run(args, output) {
    const { values, positionals } = parse(args, { json: jsonOption }, { names: ['id'], min: 1 });
    const id = positionals[0]!;
    return withClient(async (client) => {
      const was = await client.pause(id, { requestedBy: 'cli' });
      output.out(values.json ? json({ id, status: 'paused', was }) : was === 'paused' ? `${safe(id)} was already paused` : `paused ${safe(id)}`);
      return 0;
    });
  },
};

export const resumeCommand: Command = {
  args: '<id>',
  options: { json: jsonOption },
  summary: 'resume a paused instance',
  async run(args, output) {
    const { values, positionals } = parse(args, { json: jsonOption }, { names: ['id'], min: 1 });
    const id = positionals[0]!;
    return withClient(async (client) => {
      const was = await client.resume(id);
      output.out(values.json ? json({ id, status: 'running', was }) : was === 'paused' ? `resumed ${safe(id)}` : `${safe(id)} was not paused (${was})`);
      return 0;
    });
  },
};

const sendFlags = {
  'require-instance': { type: 'boolean', help: 'fail (exit 1, nothing sent) when no instance has this id, instead of holding the event for it' },
  json: jsonOption,
} as const;

export const sendCommand: Command = {
  args: '<id> <event> [json]',
  options: sendFlags,
  summary: 'send an event to an instance (held until a waitForEvent step takes it; an event may arrive before its instance starts)',
  async run(args, output) {
    const { values, positionals } = parse(args, sendFlags, { names: ['id', 'event', 'json'], min: 2 });
    const [id, event] = [positionals[0]!, positionals[1]!];
    const payload = parseJsonArg(positionals[2], 'the event payload');
    return withClient(async (client) => {
      // An event for an id with no instance is kept: the instance may be started after it (that is not an error).
      const exists = (await client.get(id)) !== null;
      if (!exists && values['require-instance']) throw new NotFoundError(`no workflow instance "${id}" (--require-instance); nothing was sent`);
      const eventId = await client.sendEvent(id, event, payload);
      if (values.json) output.out(json({ id, event, eventId, instanceExists: exists }));
      else if (exists) output.out(`sent "${safe(event)}" to ${safe(id)} (event ${eventId})`);
      else output.out(`sent "${safe(event)}" (event ${eventId}); no instance ${safe(id)} yet; the event is held for it`);
      return 0;
    });
  },
};
