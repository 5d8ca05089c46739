import { statSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll `probe` every `everyMs` until it returns something other than undefined/false; rejects after `timeoutMs`. */
export async function waitFor<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, what: string, everyMs = 20): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

function hasContent(path: string): boolean {
  try {
    return statSync(path).size > 0;
  } catch {
    return false;
  }
}

/**
 * Resolves with `performance.now()` at the moment `path` is seen to exist with content. Watches the directory
 * (inotify: an atomic rename is seen at once, without a polling delay), with a slow poll as a net only.
 */
export function waitForFileContent(path: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const name = basename(path);
    let done = false;
    const finish = (error?: Error): void => {
      if (done) return;
      done = true;
      watcher.close();
      clearInterval(poll);
      clearTimeout(timer);
      if (error === undefined) resolve(performance.now());
      else reject(error);
    };
    const check = (): void => { if (hasContent(path)) finish(); };
    const watcher = watch(dirname(path), (_event, file) => { if (file === null || file === name) check(); });
    watcher.on('error', (error) => { finish(error); });
    const poll = setInterval(check, 100);
    const timer = setTimeout(() => { finish(new Error(`timed out after ${timeoutMs} ms waiting for ${path}`)); }, timeoutMs);
    check();
  });
}
