import { defineConfig } from 'drizzle-kit';

// `npm run generate` writes migrations for changes to src/schema/ into drizzle/.
// The SQL functions (the SQL API, the hot path) are files in drizzle/functions/: edit one, then
// `npm run sql:generate` writes the migration and `npm run sql:dump` refreshes drizzle/schema.sql
// (see drizzle/functions/README.md). Other hand-written SQL:
// `npx drizzle-kit generate --custom --config config/drizzle.config.ts --name <name>`, then
// `npm run sql:generate` records its checksum.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/schema/index.ts',
  out: './drizzle',
  schemaFilter: ['baton'],
});
