import { startupSnapshot } from 'node:v8';

/**
 * Stand-ins for what loading our modules and the libraries starts that a startup snapshot cannot hold, installed
 * before any of them loads (entry.ts imports this module first) and removed once they have. Outside a snapshot
 * build this module changes nothing.
 *
 * - Signal handlers: core/signals.ts installs its handlers when it loads, and a signal watcher is a native handle.
 *   While building, `process.on(<signal>, …)` only records the listener; the deserialized process installs them
 *   first thing (installSignalHandlers), before any of our code runs, as dist/bin.js does by importing it first.
 * - Intl.Segmenter: string-width (yargs' help layout) creates one when its module loads, and an ICU object does not
 *   serialize. While loading, `Intl.Segmenter` is a class whose instances create the real segmenter on first use;
 *   the real constructor is put back before the snapshot is taken.
 */
const building = startupSnapshot.isBuildingSnapshot();

type Listener = (...args: unknown[]) => void;
const deferred: [NodeJS.Signals, Listener][] = [];

function isSignal(event: string | symbol): event is NodeJS.Signals {
  return typeof event === 'string' && /^SIG[A-Z0-9]+$/.test(event);
}

const RealSegmenter = Intl.Segmenter;
type SegmenterArgs = ConstructorParameters<typeof Intl.Segmenter>;

class LazySegmenter {
  readonly #args: SegmenterArgs;
  #real: Intl.Segmenter | undefined;

  constructor(...args: SegmenterArgs) {
    this.#args = args;
  }

  segment(input: string): Intl.Segments {
    return this.#segmenter().segment(input);
  }

  resolvedOptions(): Intl.ResolvedSegmenterOptions {
    return this.#segmenter().resolvedOptions();
  }

  #segmenter(): Intl.Segmenter {
    this.#real ??= new RealSegmenter(...this.#args);
    return this.#real;
  }
}

const intl = Intl as { Segmenter: unknown };
const events = process as unknown as { on: unknown; addListener: unknown };

if (building) {
  intl.Segmenter = LazySegmenter;
  const realOn = process.on.bind(process) as (event: string | symbol, listener: Listener) => NodeJS.Process;
  const recordSignals = (event: string | symbol, listener: Listener): NodeJS.Process => {
    if (!isSignal(event)) return realOn(event, listener);
    deferred.push([event, listener]);
    return process;
  };
  // Own properties shadow EventEmitter.prototype's until everything has loaded.
  events.on = recordSignals;
  events.addListener = recordSignals;
}

/** Everything has loaded: put the real functions back. */
export function everythingLoaded(): void {
  if (!building) return;
  intl.Segmenter = RealSegmenter;
  delete (events as Partial<typeof events>).on;
  delete (events as Partial<typeof events>).addListener;
}

/** In the deserialized process, before anything else: the signal handlers recorded while building. */
export function installSignalHandlers(): void {
  for (const [signal, listener] of deferred.splice(0)) process.on(signal, listener);
}
