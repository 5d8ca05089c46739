// The startup snapshot's builder: `node --snapshot-blob dist/snapshot.blob --build-snapshot-config
// dist/snapshot-config.json` runs this module (bundled into dist/snapshot-entry.cjs) and writes the heap it leaves.
//
// What goes in: every module of ours and every library, loaded, which is most of a cold start. What does not: anything
// live (timers, sockets, watchers, workers), and the four built-ins that hold native handles (lazy-builtin.ts).
// Loading must have no other effect: signal handlers are deferred to the deserialized process (while-building.ts),
// and test/slow/snapshot.test.ts lists what the bundle reads from the environment and the clock while it loads,
// since those reads are frozen at build time.
import { everythingLoaded, installSignalHandlers } from './while-building.ts';
import { start } from './from-snapshot.ts';
// main.ts imports these on demand, so that `check` never loads them; in the snapshot they are loaded already. Not
// config/hook-command.ts: shell-quote draws a random marker when it loads, which must differ in every process (it is
// loaded at run time, and only with --on-refresh).
import '../commands/run.ts';
import '../commands/once.ts';
import '../observe/log.ts';
import '../observe/log-text.ts';
import { writeFileSync } from 'node:fs';
import { startupSnapshot } from 'node:v8';
import { currentStamp } from './launcher.ts';

everythingLoaded();

if (startupSnapshot.isBuildingSnapshot()) {
  writeStamp();
  startupSnapshot.setDeserializeMainFunction(() => {
    installSignalHandlers();
    start();
  });
}

/** Beside the blob, what built it, for dist/bin.js to check before it restarts from it (launcher.ts). */
function writeStamp(): void {
  const blob = blobPath(process.execArgv);
  if (blob === undefined) throw new Error('--snapshot-blob is not among the options of the snapshot build');
  writeFileSync(blob.replace(/(\.blob)?$/, '.json'), `${JSON.stringify(currentStamp(), null, 2)}\n`);
}

function blobPath(execArgv: readonly string[]): string | undefined {
  const index = execArgv.findIndex((arg) => arg === '--snapshot-blob' || arg.startsWith('--snapshot-blob='));
  const arg = execArgv[index];
  if (arg === undefined) return undefined;
  return arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : execArgv[index + 1];
}
