import { loadConfig } from '../../config.ts';
import { UsageError } from '../../errors.ts';
import { parse } from '../args.ts';
import { jsonOption, type Command } from '../command.ts';

export const migrateCommand: Command = {
  args: '',
  options: { json: jsonOption },
  summary: 'apply pending migrations (starts the embedded PostgreSQL when DATABASE_URL is unset)',
  async run(args, output) {
    const { values } = parse(args, { json: jsonOption }, { names: [], min: 0 });
    const config = loadConfig();
    // Loaded here, not at start-up: `baton --help` must not pay for the database layer.
    const [{ openDatabase }, { migrate }] = await Promise.all([import('../../db/connect.ts'), import('../../db/migrate.ts')]);
    const db = await openDatabase(config, (m) => output.err(m));
    try {
      const result = await migrate(db.url);
      output.out(
        values.json
          ? JSON.stringify({ applied: result.applied, version: result.version }, null, 2)
          : result.applied > 0
          ? `applied ${result.applied} migration(s); schema version ${result.version}`
          : `schema is up to date (version ${result.version})`,
      );
    } finally {
      await db.close();
    }
    return 0;
  },
};

export const dbCommand: Command = {
  args: 'url',
  options: { json: jsonOption },
  summary: 'print the connection string in use',
  async run(args, output) {
    const { values, positionals } = parse(args, { json: jsonOption }, { names: ['subcommand'], min: 1 });
    const print = (url: string) => output.out(values.json ? JSON.stringify({ url }, null, 2) : url);
    if (positionals[0] !== 'url') throw new UsageError(`unknown subcommand "${positionals[0]}"`);
    const config = loadConfig();
    if (config.databaseUrl) {
      print(config.databaseUrl);
      return 0;
    }
    // The embedded server's address; started for the question if it is not running, and stopped again.
    const { openDatabase } = await import('../../db/connect.ts');
    const db = await openDatabase(config, (m) => output.err(m));
    try {
      print(db.url);
    } finally {
      await db.close();
    }
    return 0;
  },
};
