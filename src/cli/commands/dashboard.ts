import { intOption, parse } from '../args.ts';
import type { Command } from '../command.ts';

const options = {
  port: { type: 'string', value: 'N', help: 'port to listen on, 0 to 65535 (default: BATON_DASHBOARD_PORT, 7400; 0: any free port)' },
  host: { type: 'string', value: 'H', help: 'address to listen on (default: 127.0.0.1); any other address needs a token' },
  token: { type: 'string', value: 'T', help: 'require this bearer token, 16+ characters (default: BATON_DASHBOARD_TOKEN); open the page once with ?token=T' },
  'read-only': { type: 'boolean', help: 'show no actions (cancel, pause, resume, retry, send event), and refuse them in the API' },
  json: { type: 'boolean', help: 'print {"url": ...} as JSON on stdout once it listens' },
} as const;

export const dashboardCommand: Command = {
  args: '',
  options,
  summary: 'serve the web dashboard (overview, instances, live updates) until Ctrl-C',
  async run(args, output) {
    const { values } = parse(args, options, { names: [], min: 0 });
    const env = process.env;
    const port = intOption(values.port ?? env.BATON_DASHBOARD_PORT, 'port', 0, 65535);
    const token = values.token ?? env.BATON_DASHBOARD_TOKEN;
    // Loaded here, not at start-up: `baton --help` must not pay for the driver and the store.
    const { startDashboard } = await import('../../dashboard/server.ts');
    const { createLogger } = await import('../../log.ts');
    const { loadConfig } = await import('../../config.ts');
    const log = createLogger({ level: loadConfig().logLevel });
    const dashboard = await startDashboard({
      ...(port !== undefined ? { port } : {}),
      ...(values.host !== undefined ? { host: values.host } : {}),
      ...(token ? { token } : {}),
      readOnly: values['read-only'] ?? false,
      logger: log,
    });
    if (values.json) output.out(JSON.stringify({ url: dashboard.url, readOnly: values['read-only'] ?? false, token: token ? 'required' : 'none' }));
    else {
      output.out(`dashboard: ${dashboard.url}${values['read-only'] ? ' (read-only)' : ''}`);
      if (token) output.out('it needs its token: open the URL once with ?token=<your token> (the browser keeps a cookie), or send Authorization: Bearer <token>');
    }
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await dashboard.close();
    return 0;
  },
};
