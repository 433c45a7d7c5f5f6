#!/usr/bin/env node
// The `baton` command. TypeScript sources run through tsx; nothing is compiled ahead.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
