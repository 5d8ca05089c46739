/**
 * Signal handlers, installed when this module is evaluated: first thing in bin.ts, before anything else loads. A
 * SIGHUP or SIGTERM that arrives while the daemon is still starting (loading its bundle, binding its ports) is
 * queued for it instead of killing the process with Node's default action.
 */
export type Signal = 'SIGTERM' | 'SIGINT' | 'SIGHUP';

const SIGNALS: readonly Signal[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
const queued: Signal[] = [];
let handler: ((signal: Signal) => void) | undefined;

for (const signal of SIGNALS) {
  // Persistent listeners, never `once`: a second SIGTERM during shutdown must not fall back to the default action.
  process.on(signal, () => {
    if (handler === undefined) queued.push(signal);
    else handler(signal);
  });
}

/** Receive every signal from now on, and those that came before this call, in order. */
export function onSignal(receive: (signal: Signal) => void): void {
  handler = receive;
  for (const signal of queued.splice(0)) receive(signal);
}
