// The fake's rate limiter: rolling windows of request times, counting every request (rejected ones too, as the
// upstream's do), and the RateLimit-* / Retry-After numbers they imply. Also the same count read back from a log.

/** The most of `timesMs` (ascending) within any window [t, t + windowMs), the way the limiter counts. */
export function maxInAnyWindow(timesMs: readonly number[], windowMs: number): number {
  let best = 0;
  let start = 0;
  for (let end = 0; end < timesMs.length; end++) {
    while ((timesMs[end] ?? 0) - (timesMs[start] ?? 0) >= windowMs) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

/** A rolling window of request times for one key (an API token, a service account, a client IP). */
export class RateWindow {
  readonly #times: number[] = [];
  readonly limit: number;
  readonly windowMs: number;
  constructor(limit: number, windowMs: number) {
    this.limit = limit;
    this.windowMs = windowMs;
  }

  /** Counts a request and says whether it is over the limit. */
  hitIsOver(now: number): boolean {
    this.#prune(now);
    this.#times.push(now);
    return this.#times.length > this.limit;
  }
  headers(now: number): Record<string, string> {
    this.#prune(now);
    const oldest = this.#times[0];
    return {
      'ratelimit-limit': String(this.limit),
      'ratelimit-remaining': String(Math.max(0, this.limit - this.#times.length)),
      'ratelimit-reset': String(oldest === undefined ? 0 : Math.ceil((oldest + this.windowMs - now) / 1000)),
    };
  }
  /** Whole seconds (>= 1) until one more request fits under the limit. */
  retryAfterSec(now: number): number {
    const freeing = this.#times[this.#times.length - this.limit] ?? now;
    return Math.max(1, Math.ceil((freeing + this.windowMs - now) / 1000));
  }
  #prune(now: number): void {
    while ((this.#times[0] ?? Infinity) <= now - this.windowMs) this.#times.shift();
  }
}

/** The windows of one kind of key, created on first use. */
export class RateWindows {
  readonly #windows = new Map<string, RateWindow>();
  readonly #limit: number;
  readonly #windowMs: number;
  constructor(limit: number, windowMs: number) {
    this.#limit = limit;
    this.#windowMs = windowMs;
  }
  get(key: string): RateWindow {
    const window = this.#windows.get(key) ?? new RateWindow(this.#limit, this.#windowMs);
    this.#windows.set(key, window);
    return window;
  }
  clear(): void {
    this.#windows.clear();
  }
}
