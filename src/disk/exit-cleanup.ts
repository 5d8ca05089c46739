/**
 * Undo on process exit what an interrupted file operation left: a clean shutdown calls process.exit() while a
 * write or a lock may still be in flight, and its temporary file or lock file must not outlive the process. The
 * callbacks run synchronously in the 'exit' event; SIGKILL skips them (the start-up cleanup and the lock's
 * staleness cover that).
 */
const pending = new Set<() => void>();
let listening = false;

/** Run `undo` at exit unless the returned function is called first (the operation finished). */
export function undoOnExit(undo: () => void): () => void {
  if (!listening) {
    listening = true;
    process.once('exit', () => {
      for (const callback of pending) {
        try {
          callback();
        } catch {
          // Exiting: nothing else can be done about it.
        }
      }
    });
  }
  pending.add(undo);
  return () => {
    pending.delete(undo);
  };
}
