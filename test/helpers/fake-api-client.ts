// Plain-fetch helpers for the tests of the fake API itself (test/fake-api*): one answer read whole, and the
// shape checks every route shares.
import assert from 'node:assert/strict';
import type { FakeApi } from '../../testkit/fake-api/server.ts';

export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

export async function call(api: FakeApi | string, path: string, init: RequestInit = {}): Promise<Answer> {
  const base = typeof api === 'string' ? api : api.url;
  const res = await fetch(base + path, { redirect: 'manual', ...init });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

export function json(answer: Answer): unknown {
  return JSON.parse(answer.text) as unknown;
}

export function object(answer: Answer): Record<string, unknown> {
  const value = json(answer);
  assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), `a JSON object: ${answer.text}`);
  return value as Record<string, unknown>;
}

/** An error answer: this status, JSON, exactly {"message": string}. */
export function assertMessage(answer: Answer, status: number): void {
  assert.equal(answer.status, status, answer.text);
  assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
  const body = object(answer);
  assert.deepEqual(Object.keys(body), ['message']);
  assert.equal(typeof body.message, 'string');
}

export function assertRateHeaders(answer: Answer, limit: number, remaining: number): void {
  assert.equal(answer.headers.get('ratelimit-limit'), String(limit), 'RateLimit-Limit');
  assert.equal(answer.headers.get('ratelimit-remaining'), String(remaining), 'RateLimit-Remaining');
  assert.match(answer.headers.get('ratelimit-reset') ?? '', /^\d+$/, 'RateLimit-Reset');
}

/** A clock the test moves by hand. */
export function manualClock(startMs = 1_800_000_000_000): { now: () => number; set: (ms: number) => void; advance: (ms: number) => void } {
  let t = startMs;
  return { now: () => t, set: (ms) => { t = ms; }, advance: (ms) => { t += ms; } };
}
