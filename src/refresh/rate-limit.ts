import type { RateLimit } from '../config/config.ts';

/**
 * One exchange attempt, as the budget remembers it: when, and for which identity (an API token's fingerprint, or a
 * workload identity's key). `atMs` is on the monotonic clock, so a wall-clock step neither frees nor blocks slots;
 * records persisted by another process are converted when read (see state-file.ts).
 */
export interface ExchangeRecord {
  readonly atMs: number;
  readonly key: string;
  /** Random, so that two attempts in the same millisecond (two processes) stay two records when merged. */
  readonly id?: string;
}

export interface BudgetState {
  /** Exchanges still allowed right now. */
  readonly remaining: number;
  /** When the next exchange is allowed: `nowMs` when remaining > 0. */
  readonly nextAllowedAtMs: number;
}

/**
 * The client-side cap: at most `limit.max` exchange attempts in any window of `limit.windowMs`, for one identity
 * (`key`) or, with `key` undefined, for all of them together (the global cap). An attempt at `nowMs` counts every
 * earlier attempt after `nowMs - windowMs - margin`, so any two attempts `max` apart are more than a whole window
 * apart, whichever way the upstream draws its window edges. The margin exists because the upstream counts
 * arrivals: a request that travels faster than the one a window before it must still land outside that window.
 */
export function budget(records: readonly ExchangeRecord[], key: string | undefined, limit: RateLimit, nowMs: number): BudgetState {
  const span = limit.windowMs + arrivalMargin(limit);
  const inWindow = records
    .filter((record) => (key === undefined || record.key === key) && record.atMs > nowMs - span)
    .map((record) => record.atMs)
    .sort((a, b) => a - b);
  const remaining = Math.max(0, limit.max - inWindow.length);
  if (remaining > 0) return { remaining, nextAllowedAtMs: nowMs };
  // The slot frees when the attempt `max` places back leaves the (widened) window.
  const freeing = inWindow[inWindow.length - limit.max] ?? nowMs;
  return { remaining, nextAllowedAtMs: Math.max(nowMs, freeing + span) };
}

/**
 * The cap across identities, a net under a rotation storm (a token file rewritten with a new token every few ms
 * gave each token its own budget: 4,886 exchanges in 55 s, against an upstream that allows 200 a minute per client
 * IP, shared with the rest of the node). Twice the per-identity cap: a rotation right after a busy window is
 * still exchanged at once.
 */
export function globalLimit(limit: RateLimit): RateLimit {
  return { max: limit.max * 2, windowMs: limit.windowMs };
}

/** Both caps at once: when the next attempt for `key` is allowed, and how many it has left. */
export function combinedBudget(records: readonly ExchangeRecord[], key: string, limit: RateLimit, nowMs: number): BudgetState {
  const own = budget(records, key, limit, nowMs);
  const all = budget(records, undefined, globalLimit(limit), nowMs);
  return { remaining: Math.min(own.remaining, all.remaining), nextAllowedAtMs: Math.max(own.nextAllowedAtMs, all.nextAllowedAtMs) };
}

/** 2 % of the window, between 50 ms and 2 s: 1.2 s for the upstream's 10 per minute. */
export function arrivalMargin(limit: RateLimit): number {
  return Math.min(2_000, Math.max(50, Math.round(limit.windowMs * 0.02)));
}

/**
 * Records still worth keeping: those inside the (widened) window. Applied on every write, to our own records and
 * to those read back from disk, so the state file stays small. Records are never in the future: conversion clamps
 * them to now when read (a wall clock that went back must not make the budget forget them).
 */
export function prune(records: readonly ExchangeRecord[], limit: RateLimit, nowMs: number): ExchangeRecord[] {
  return records.filter((record) => record.atMs > nowMs - limit.windowMs - arrivalMargin(limit));
}

/**
 * Union of two logs (what this process knows and what the state file holds, which another process may have added
 * to), without duplicates: records with an id are one record however often they were read or settled, at their
 * latest time; a record without one (an older file) is kept twice at worst, which only makes the budget stricter.
 */
export function merge(a: readonly ExchangeRecord[], b: readonly ExchangeRecord[]): ExchangeRecord[] {
  const byKey = new Map<string, ExchangeRecord>();
  for (const record of [...a, ...b]) {
    const key = record.id === undefined ? `${String(record.atMs)}/${record.key}/` : `id/${record.id}`;
    const seen = byKey.get(key);
    if (seen === undefined || record.atMs > seen.atMs) byKey.set(key, record);
  }
  return [...byKey.values()].sort((x, y) => x.atMs - y.atMs);
}

/**
 * The attempt `id` moved to when its answer came (or it failed): the upstream counted it on arrival, somewhere
 * between the send and the answer, so counting it from the answer on keeps the next attempt `max` places later
 * outside the upstream's window however long the request travelled or waited in the upstream's queue.
 */
export function settle(records: readonly ExchangeRecord[], id: string, atMs: number): ExchangeRecord[] {
  return records.map((record) => (record.id === id && atMs > record.atMs ? { ...record, atMs } : record));
}
