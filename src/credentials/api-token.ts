import { readFile } from 'node:fs/promises';
import { reason } from '../disk/jwt-file.ts';
import { parseApiToken, type TokenRead } from './api-token-text.ts';

export async function readApiTokenFile(path: string): Promise<TokenRead> {
  let text: string;
  try {
    // A valid token is at most 4 KiB; a huge file is read once and refused as malformed.
    text = await readFile(path, 'utf8');
  } catch (error) {
    const missing = error instanceof Error && 'code' in error && error.code === 'ENOENT';
    return { ok: false, problem: missing ? 'missing' : 'unreadable', message: `token file ${path} ${missing ? 'does not exist' : `is unreadable: ${reason(error)}`}` };
  }
  return parseApiToken(text, `token file ${path}`);
}
