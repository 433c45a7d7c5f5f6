#!/usr/bin/env node
// The `baton` command inside this repository: the TypeScript sources run through tsx,
// with this repository's tsconfig (its "paths" map `baton` to src/, so the example
// workers share one copy of Baton with the CLI, from any working directory).
// The installed package runs the compiled dist/cli/bin.js instead (package.json "bin").
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'tsconfig.json') });
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
