import { isMissing, readBoundedFile } from '../disk/bounded-read.ts';
import { MAX_TOKEN_BYTES, parseApiToken, type TokenRead } from './api-token-text.ts';

/** The token file may hold a 4 KiB token and a trailing newline (as `kubectl create secret --from-file` keeps it). */
export const MAX_TOKEN_FILE_BYTES = MAX_TOKEN_BYTES + 1;

/**
 * Read the token file: a regular file only (a FIFO, device or directory is `unreadable`, without blocking), links
 * followed (the kubelet's `..data` swap), at most MAX_TOKEN_FILE_BYTES (a larger file is `malformed`).
 */
export async function readApiTokenFile(path: string): Promise<TokenRead> {
  const source = `token file ${path}`;
  let bytes: Buffer;
  try {
    bytes = await readBoundedFile(path, MAX_TOKEN_FILE_BYTES, { followLinks: true });
  } catch (error) {
    if (isMissing(error)) return { ok: false, problem: 'missing', message: `${source} does not exist` };
    // The error names the path, then what is wrong with it: "token file /x: is a FIFO (named pipe), …".
    return { ok: false, problem: 'unreadable', message: `token file ${error instanceof Error ? error.message : 'is unreadable'}` };
  }
  if (bytes.length > MAX_TOKEN_FILE_BYTES) return { ok: false, problem: 'malformed', message: `${source} does not hold a valid API token: the file is larger than ${String(MAX_TOKEN_FILE_BYTES)} bytes` };
  return parseApiToken(bytes.toString('utf8'), source);
}
