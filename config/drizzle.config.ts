import { defineConfig } from 'drizzle-kit';

// `npm run generate` writes migrations for changes to src/schema/ into drizzle/.
// Hand-written SQL (functions, the SQL API): `npx drizzle-kit generate --custom --config config/drizzle.config.ts --name <name>`.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/schema/index.ts',
  out: './drizzle',
  schemaFilter: ['baton'],
});
