import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * A secret kept only as its SHA-256, for the drop-in endpoints' constant-time comparison: comparing fixed-length
 * digests takes the same time whatever the candidate's length or content.
 */
export class SecretDigest {
  #digest: Buffer | undefined;

  set(secret: string): void {
    this.#digest = digest(secret);
  }

  matches(candidate: string): boolean {
    const expected = this.#digest;
    return expected !== undefined && timingSafeEqual(expected, digest(candidate));
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
