import { DiskError } from '../../src/core/errors.ts';
import type { FileAccess, FileVersion } from '../../src/disk/file-access.ts';

interface Stored {
  readonly text: string;
  readonly mode: number;
  readonly version: number;
}

/**
 * FileAccess on memory, for the state store, the sink and the refresher on fake time: writes can be made to fail
 * (as a full or read-only volume would) or be held, and what a reader of each file would see is observable.
 */
export class MemoryFiles implements FileAccess {
  readonly #files = new Map<string, Stored>();
  #serial = 0;
  #tail: Promise<unknown> = Promise.resolve();
  readonly writes: { readonly path: string; readonly text: string }[] = [];
  /** Paths of the writes that failed, in order. */
  readonly failedWrites: string[] = [];
  writeAttempts = 0;
  /** The next this-many writes (to any path matching `failPath`, all paths if unset) fail with ENOSPC. */
  failNext = 0;
  failPath: ((path: string) => boolean) | undefined;
  #hold: Promise<void> | undefined;

  read(path: string, maxBytes: number): Promise<string | undefined> {
    const file = this.#files.get(path);
    if (file !== undefined && Buffer.byteLength(file.text) > maxBytes) return Promise.reject(new DiskError('unreadable', path, `is larger than ${String(maxBytes)} bytes`));
    return Promise.resolve(file?.text);
  }

  async write(path: string, text: string, mode: number): Promise<FileVersion> {
    this.writeAttempts += 1;
    if (this.#hold !== undefined) await this.#hold;
    if (this.failNext > 0 && (this.failPath === undefined || this.failPath(path))) {
      this.failNext -= 1;
      this.failedWrites.push(path);
      throw new DiskError('write_failed', path, 'write failed: ENOSPC (no space left on device)');
    }
    this.#serial += 1;
    this.#files.set(path, { text, mode, version: this.#serial });
    this.writes.push({ path, text });
    return { dev: 1, ino: this.#serial, size: text.length, mtimeMs: this.#serial };
  }

  async withLock<T>(_path: string, fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.catch(() => undefined).then(fn);
    this.#tail = run;
    return run;
  }

  version(path: string): Promise<FileVersion | undefined> {
    const file = this.#files.get(path);
    return Promise.resolve(file === undefined ? undefined : { dev: 1, ino: file.version, size: file.text.length, mtimeMs: file.version });
  }

  /** Hold every write until the returned function is called. */
  hold(): () => void {
    const gate = Promise.withResolvers<undefined>();
    this.#hold = gate.promise;
    return () => {
      this.#hold = undefined;
      gate.resolve(undefined);
    };
  }

  /** What a reader of `path` sees now. */
  text(path: string): string | undefined {
    return this.#files.get(path)?.text;
  }

  mode(path: string): number | undefined {
    return this.#files.get(path)?.mode;
  }

  /** Someone else deletes the file, or puts other content there. */
  tamper(path: string, text: string | undefined): void {
    this.#serial += 1;
    if (text === undefined) this.#files.delete(path);
    else this.#files.set(path, { text, mode: 0o644, version: this.#serial });
  }
}
