#!/usr/bin/env node
import { main } from './main.ts';

process.title = 'ek-sidecar';
const code = await main();
// Exit explicitly: an idle keep-alive socket or watcher must not keep a finished command alive.
process.exit(code);
