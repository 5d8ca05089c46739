/** How often a stopping group is checked for members left. */
const POLL_MS = 25;

/**
 * A process group we started (a hook spawned `detached`, so its pid is its group id), stopped as a whole: SIGTERM
 * to every member, SIGKILL to whatever is left after a grace period. Signalling the group rather than the child
 * reaches what the hook forked too, which outlives the hook otherwise.
 *
 * A group id is not reused while any member lives, so signalling it cannot hit a stranger until the group is
 * empty; we stop signalling once it is (ESRCH) or once SIGKILL has been sent. Members that are zombies (unreaped
 * because their parent died and nothing reaps orphans, as when the daemon is PID 1) still answer signal 0: they
 * cost the grace period, then the SIGKILL is a no-op.
 */
export class ProcessGroup {
  readonly #pgid: number;
  #killAt = Number.POSITIVE_INFINITY;
  #stopped: Promise<void> | undefined;
  #resolve: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #done = false;

  constructor(pgid: number) {
    this.#pgid = pgid;
  }

  /**
   * SIGTERM the group now (once), SIGKILL it `graceMs` later if anything is left. A later call with a shorter
   * grace brings the SIGKILL forward. Resolves when the group is empty or has been sent SIGKILL.
   */
  stop(graceMs: number): Promise<void> {
    this.#killAt = Math.min(this.#killAt, performance.now() + graceMs);
    if (this.#stopped === undefined) {
      this.#stopped = new Promise((resolve) => { this.#resolve = resolve; });
      if (signalGroup(this.#pgid, 'SIGTERM')) this.#check();
      else this.#finish();
    } else if (!this.#done) {
      clearTimeout(this.#timer);
      this.#check();
    }
    return this.#stopped;
  }

  /** SIGKILL the group at once and synchronously: for process 'exit', where no timer or promise runs any more. */
  killNow(): void {
    if (this.#done) return;
    signalGroup(this.#pgid, 'SIGKILL');
    this.#finish();
  }

  #check(): void {
    if (this.#done) return;
    if (!signalGroup(this.#pgid, 0)) {
      this.#finish();
      return;
    }
    const left = this.#killAt - performance.now();
    if (left <= 0) {
      this.killNow();
      return;
    }
    this.#timer = setTimeout(() => { this.#check(); }, Math.min(POLL_MS, left));
  }

  #finish(): void {
    this.#done = true;
    clearTimeout(this.#timer);
    this.#resolve?.();
  }
}

/** Signal every member of the group; false when the group is gone (ESRCH) or not ours to signal (EPERM). */
function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}
