// Child process for the concurrent-migration test: migrate, print the result as JSON.
import { migrate } from '../../src/db/migrate.ts';

const result = await migrate(process.argv[2]!);
process.stdout.write(JSON.stringify(result));
