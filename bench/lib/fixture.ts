// A directory with an API token file and room for a JWT file, as a section's daemons need it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, removeDir } from './processes.ts';

/** Not a secret: the fake API accepts any well-formed token. */
export const BENCH_TOKEN = 'ek_live_bench_0123456789abcdef0123456789abcdef';

export interface Fixture {
  readonly dir: string;
  readonly tokenFile: string;
  /** A path for a JWT file in a directory of its own (the state file sits beside it). */
  jwtFile(name?: string): string;
  remove(): void;
}

export function makeFixture(prefix: string): Fixture {
  const dir = makeTempDir(prefix);
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, BENCH_TOKEN);
  return {
    dir,
    tokenFile,
    jwtFile: (name = 'jwt') => join(dir, name),
    remove: () => { removeDir(dir); },
  };
}

export function fmt(value: number, digits = 0): string {
  return Number.isFinite(value) ? value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a';
}

/** "+12" or "−3": a difference, signed either way. */
export function signed(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return 'n/a';
  const text = fmt(Math.abs(value), digits);
  return Number(text.replaceAll(',', '')) === 0 ? `±${text}` : `${value < 0 ? '−' : '+'}${text}`;
}
