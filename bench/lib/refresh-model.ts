// The production figures that scaled-time runs stand for, and what the daemon's own refresh policy
// (src/refresh-policy.ts, used as is) implies for the number of exchanges per JWT lifetime.
import { refreshPoint } from '../../src/refresh/refresh-policy.ts';

/** The production figures the scaled runs stand for. */
export const REAL_LIFETIME_SEC = 900;
export const REAL_MIN_TTL_SEC = 60;
export const REAL_WINDOW_SEC = 60;
export const REFRESH_WINDOW: readonly [number, number] = [0.6, 0.8];

/** Expected exchanges per lifetime under the daemon's refresh policy: the mean of lifetime / refresh interval. */
export function modelExchangesPerLifetime(lifetimeMs: number, minTtlMs: number, steps = 10_000): number {
  let sum = 0;
  for (let i = 0; i < steps; i++) {
    const u = (i + 0.5) / steps;
    const at = refreshPoint({ issuedAtMs: 0, expiresAtMs: lifetimeMs }, REFRESH_WINDOW, minTtlMs, () => u);
    sum += lifetimeMs / at;
  }
  return sum / steps;
}
