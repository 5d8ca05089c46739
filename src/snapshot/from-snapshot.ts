// The start of a process deserialized from the startup snapshot: what dist/bin.js does once it has chosen the plain
// bundle, with everything already loaded. The signal handlers that core/signals.ts registers when it loads are
// installed by entry.ts just before start() runs.
import '../core/signals.ts';
import { main } from '../main.ts';

export function start(): void {
  // No script runs from a snapshot, so argv[1] is whatever followed the options: dist/bin.js in every supported
  // start (the image's ENTRYPOINT, the launcher), taken as the script it stands for.
  const script = process.argv[1];
  const args = script !== undefined && /\.[cm]?js$/.test(script) ? process.argv.slice(2) : process.argv.slice(1);
  process.title = 'ek-sidecar';
  void main(args).then((code) => process.exit(code));
}
