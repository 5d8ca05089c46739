import type { RateLimit } from '../config/config.ts';

/** One exchange attempt, as the budget remembers it: when, and for which API token (by fingerprint). */
export interface ExchangeRecord {
  readonly atMs: number;
  readonly fingerprint: string;
}

export interface BudgetState {
  /** Exchanges still allowed right now for this token. */
  readonly remaining: number;
  /** When the next exchange is allowed: `nowMs` when remaining > 0. */
  readonly nextAllowedAtMs: number;
}

/**
 * The client-side cap: at most `limit.max` exchange attempts per token in any window of `limit.windowMs`.
 * An attempt at `nowMs` counts every earlier attempt after `nowMs - windowMs - margin`, so any two
 * attempts `max` apart are more than a whole window apart, whichever way the upstream draws its window edges.
 * The margin exists because the upstream counts arrivals: a request that travels faster than the one a window
 * before it must still land outside that window.
 */
export function budget(records: readonly ExchangeRecord[], fingerprint: string, limit: RateLimit, nowMs: number): BudgetState {
  const span = limit.windowMs + arrivalMargin(limit);
  const inWindow = records
    .filter((record) => record.fingerprint === fingerprint && record.atMs > nowMs - span)
    .map((record) => record.atMs)
    .sort((a, b) => a - b);
  const remaining = Math.max(0, limit.max - inWindow.length);
  if (remaining > 0) return { remaining, nextAllowedAtMs: nowMs };
  // The slot frees when the attempt `max` places back leaves the (widened) window.
  const freeing = inWindow[inWindow.length - limit.max] ?? nowMs;
  return { remaining, nextAllowedAtMs: Math.max(nowMs, freeing + span) };
}

/** 2 % of the window, between 50 ms and 2 s: 1.2 s for the upstream's 10 per minute. */
export function arrivalMargin(limit: RateLimit): number {
  return Math.min(2_000, Math.max(50, Math.round(limit.windowMs * 0.02)));
}

/**
 * Records still worth keeping: those inside the window. Records far in the future (the clock went back
 * by more than a window) are dropped too, rather than blocking exchanges until the clock catches up.
 */
export function prune(records: readonly ExchangeRecord[], limit: RateLimit, nowMs: number): ExchangeRecord[] {
  return records.filter((record) => record.atMs >= nowMs - limit.windowMs - arrivalMargin(limit) && record.atMs <= nowMs + limit.windowMs);
}

/** Union of two logs (this process's and what another process wrote to the state file), without duplicates. */
export function merge(a: readonly ExchangeRecord[], b: readonly ExchangeRecord[]): ExchangeRecord[] {
  const seen = new Set<string>();
  const out: ExchangeRecord[] = [];
  for (const record of [...a, ...b]) {
    const key = `${record.atMs}/${record.fingerprint}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(record);
  }
  return out.sort((x, y) => x.atMs - y.atMs);
}
