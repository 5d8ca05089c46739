import { constants } from 'node:fs';
import { open, readFile, readdir, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { DiskError } from '../core/errors.ts';
import { expiryFromClaims, isThreePartJwt } from '../upstream/jwt-claims.ts';

/**
 * Replace `path` atomically: write-file-atomic writes a temporary file in the same directory, fsyncs it, gives it
 * `mode` and renames it over the old file (cleaning the temporary file on every error path); we then fsync the
 * directory so that the rename itself survives a crash. Readers see the old bytes or the new, never a mix.
 */
export async function writeFileAtomically(path: string, content: string, mode: number): Promise<void> {
  try {
    await writeFileAtomic(path, content, { mode, fsync: true, encoding: 'utf8' });
  } catch (error) {
    throw new DiskError('write_failed', path, `write failed: ${reason(error)}`, error);
  }
  await fsyncDirectory(dirname(path));
}

async function fsyncDirectory(directory: string): Promise<void> {
  let handle;
  try {
    handle = await open(directory, constants.O_RDONLY);
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the rename has happened either way.
  } finally {
    await handle?.close();
  }
}

/**
 * Fail at start, not at the first refresh, when the JWT file cannot be written: the directory must exist, be a
 * directory, and accept a new file; the path itself must not be a directory.
 */
export async function probeJwtPath(path: string): Promise<void> {
  const directory = dirname(path);
  const info = await stat(directory).catch((error: unknown) => {
    throw new DiskError('unusable_directory', path, `its directory ${directory} is not usable: ${reason(error)}`, error);
  });
  if (!info.isDirectory()) throw new DiskError('unusable_directory', path, `${directory} is not a directory`);
  const existing = await stat(path).catch(() => undefined);
  if (existing?.isDirectory() === true) throw new DiskError('unusable_directory', path, 'is a directory');
  const probe = join(directory, `.${basename(path)}.probe-${process.pid}`);
  try {
    const handle = await open(probe, 'wx', 0o600);
    await handle.close();
    await unlink(probe);
  } catch (error) {
    await rm(probe, { force: true }).catch(() => undefined);
    throw new DiskError('unusable_directory', path, `cannot create files in ${directory}: ${reason(error)}`, error);
  }
}

/** Remove temporary files a killed process may have left beside `path` (write-file-atomic names them `<name>.<digits>`). */
export async function removeStaleTemporaryFiles(path: string): Promise<void> {
  const directory = dirname(path);
  const pattern = new RegExp(`^${escapeRegExp(basename(path))}\\.\\d+$`);
  const names = await readdir(directory).catch(() => []);
  await Promise.all(names.filter((name) => pattern.test(name)).map((name) => rm(join(directory, name), { force: true }).catch(() => undefined)));
}

/** A JWT read back from its file, in either format. */
export interface StoredJwt {
  readonly jwt: string;
  readonly tokenType: string;
  /** The earlier of the file's `expiresAt` (json format) and the JWT's `exp`; undefined when neither is known. */
  readonly expiresAtMs: number | undefined;
}

/** Read the JWT file (`raw` or `json`); throws JwtFileError when it is missing, unreadable or holds no JWT. */
export async function readJwtFile(path: string): Promise<StoredJwt> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new DiskError('unreadable', path, reason(error), error);
  }
  const stored = parseJwtFile(text);
  if (stored === undefined) throw new DiskError('unreadable', path, 'does not hold a JWT');
  return stored;
}

export function parseJwtFile(text: string): StoredJwt | undefined {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) return parseJsonForm(trimmed);
  if (!isThreePartJwt(trimmed)) return undefined;
  return { jwt: trimmed, tokenType: 'Bearer', expiresAtMs: expiryFromClaims(trimmed) };
}

function parseJsonForm(text: string): StoredJwt | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { accessToken, tokenType, expiresAt } = parsed as Record<string, unknown>;
  if (typeof accessToken !== 'string' || !isThreePartJwt(accessToken)) return undefined;
  const stated = typeof expiresAt === 'string' ? Date.parse(expiresAt) : Number.NaN;
  const claimed = expiryFromClaims(accessToken);
  const candidates = [Number.isNaN(stated) ? undefined : stated, claimed].filter((value): value is number => value !== undefined);
  return {
    jwt: accessToken,
    tokenType: typeof tokenType === 'string' ? tokenType : 'Bearer',
    expiresAtMs: candidates.length === 0 ? undefined : Math.min(...candidates),
  };
}

export async function removeFile(path: string): Promise<void> {
  await rm(path, { force: true });
}

/** An error's code and message: file system errors carry paths, never file contents. */
export function reason(error: unknown): string {
  if (!(error instanceof Error)) return 'unknown error';
  return 'code' in error && typeof error.code === 'string' ? `${error.code} (${error.message})` : error.message;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
