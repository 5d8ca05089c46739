#!/usr/bin/env node
// First import: the signal handlers exist before anything else loads (see core/signals.ts).
import './core/signals.ts';
import { main } from './main.ts';

process.title = 'ek-sidecar';
const code = await main();
// Exit explicitly: an idle keep-alive socket or watcher must not keep a finished command alive.
process.exit(code);
