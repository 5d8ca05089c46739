// The production figures that scaled-time runs stand for, and what the daemon's own refresh policy
// (src/refresh/refresh-policy.ts, used as is, with the product's default --refresh-window) implies for the number of
// exchanges per JWT lifetime.
import { OPTIONS } from '../../src/config/options.ts';
import { parseRefreshWindow } from '../../src/config/values.ts';
import { latestRefresh, refreshPoint } from '../../src/refresh/refresh-policy.ts';

/** The production figures the scaled runs stand for. */
export const REAL_LIFETIME_SEC = 900;
export const REAL_MIN_TTL_SEC = 60;
export const REAL_WINDOW_SEC = 60;

function defaultWindow(): readonly [number, number] {
  const parsed = parseRefreshWindow(OPTIONS['refresh-window'].default);
  if (!parsed.ok) throw new Error(`the default --refresh-window does not parse: ${parsed.error}`);
  return parsed.value;
}

/** The daemon's default --refresh-window. */
export const REFRESH_WINDOW: readonly [number, number] = defaultWindow();

/** "0.7–0.85" */
export function windowText(window: readonly [number, number] = REFRESH_WINDOW): string {
  return `${String(window[0])}–${String(window[1])}`;
}

/**
 * Expected exchanges per lifetime in steady state under the daemon's refresh policy: the lifetime over the mean
 * interval between exchanges (a renewal rate), each interval the policy's refresh point for a uniform draw.
 */
export function modelExchangesPerLifetime(lifetimeMs: number, minTtlMs: number, steps = 10_000): number {
  let sum = 0;
  for (let i = 0; i < steps; i++) {
    const u = (i + 0.5) / steps;
    sum += refreshPoint({ issuedAtMs: 0, expiresAtMs: lifetimeMs }, REFRESH_WINDOW, minTtlMs, () => u);
  }
  return lifetimeMs / (sum / steps);
}

/**
 * Whether the whole window is drawn at this lifetime: below about 200 s the policy's margin before --min-ttl (a
 * quarter of the usable life, at most 30 s) caps the refresh point under the window's end, and more exchanges follow.
 */
export function windowUncapped(lifetimeMs: number, minTtlMs: number): boolean {
  return latestRefresh({ issuedAtMs: 0, expiresAtMs: lifetimeMs }, minTtlMs) >= REFRESH_WINDOW[1] * lifetimeMs;
}
