#!/usr/bin/env node
// The `baton` command as installed: compiled JavaScript, no TypeScript loader at start-up.
// (In this repository, bin/baton.js runs the sources through tsx instead.)
import { main } from './main.ts';

process.exitCode = await main(process.argv.slice(2));
