#!/usr/bin/env node
// First import: the signal handlers exist before anything else loads (see core/signals.ts).
import './core/signals.ts';
import { startFromSnapshot } from './snapshot/launcher.ts';

const args = process.argv.slice(2);
// `run` and `once` restart from the startup snapshot when this Node.js binary built it (no return then); otherwise,
// and for `check`, --help and --version, the plain bundle starts here.
const fallback = startFromSnapshot(import.meta.url, args, process.env);
if (fallback !== undefined) process.stderr.write(`ek-sidecar: ${fallback}\n`);
const { main } = await import('./main.ts');
process.title = 'ek-sidecar';
const code = await main(args);
// Exit explicitly: an idle keep-alive socket or watcher must not keep a finished command alive.
process.exit(code);
