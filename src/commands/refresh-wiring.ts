import type { Config } from '../config/config.ts';
import type { FileAccess } from '../disk/file-access.ts';
import { JwtSink } from '../disk/jwt-sink.ts';
import type { StateStore } from '../disk/state-store.ts';
import { Refresher, type RefresherDeps } from '../refresh/refresher.ts';

/** What the refresher needs, less the ledger and the sink made here, plus what the sink needs of its own. */
export interface RefreshParts extends Omit<RefresherDeps, 'config' | 'ledger' | 'sink'> {
  readonly config: RefresherDeps['config'] & Pick<Config, 'jwtFile' | 'jwtFileMode' | 'jwtFormat'>;
  readonly store: StateStore;
  readonly files: FileAccess;
}

/**
 * The refresher and the JWT sink, wired to each other: the refresher hands the sink each JWT to install, and the
 * sink reports back (installed, a failed write, the file gone) and reads the budget's records when it rewrites the
 * state. Production (`run`, `once`) and the fake-time tests build them the same way, here.
 */
export function createRefresherWithSink(parts: RefreshParts): { refresher: Refresher; sink: JwtSink } {
  const { config, store, files, clock, random, timers, metrics, log, signal } = parts;
  const sink = new JwtSink({
    jwtFile: config.jwtFile,
    mode: config.jwtFileMode,
    format: config.jwtFormat,
    store,
    files,
    clock,
    random,
    timers,
    metrics,
    log,
    signal,
    records: () => refresher.records(),
    events: {
      onInstalled: (installation) => { refresher.onInstalled(installation); },
      onWriteFailed: (error, failures) => { refresher.onWriteFailed(error, failures); },
      onFileGone: () => { refresher.onFileGone(); },
    },
  });
  const refresher: Refresher = new Refresher({
    config,
    client: parts.client,
    ledger: store,
    sink,
    served: parts.served,
    metrics,
    clock,
    random,
    timers,
    log,
    signal,
    ...(parts.events === undefined ? {} : { events: parts.events }),
  });
  return { refresher, sink };
}
