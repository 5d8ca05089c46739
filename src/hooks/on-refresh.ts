import { spawn } from 'node:child_process';
import type { Logger } from 'pino';

/** The hook may not run longer than this; a stuck hook must not pile up behind the next refresh. */
export const HOOK_TIMEOUT_MS = 60_000;

/**
 * Run the hook after a new JWT is written, with EK_JWT_FILE in its environment. Its output goes to ours; its
 * failure is logged, never fatal. Runs never overlap: a refresh during a run queues exactly one more run.
 */
export function createHookRunner(argv: readonly string[], jwtFile: string, log: Logger): () => void {
  let running = false;
  let again = false;
  const [command = '', ...args] = argv;
  const run = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    // The hook needs the JWT file, never the API token: a development EK_API_TOKEN is not passed on.
    const env: NodeJS.ProcessEnv = { ...process.env, EK_JWT_FILE: jwtFile };
    delete env.EK_API_TOKEN;
    const child = spawn(command, args, {
      env,
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: HOOK_TIMEOUT_MS,
    });
    let finished = false;
    // 'error' and 'exit' may both fire for one child (a spawn failure may or may not be followed by 'exit').
    const finish = (outcome: { code?: number | null; signal?: NodeJS.Signals | null; error?: Error }): void => {
      if (finished) return;
      finished = true;
      running = false;
      if (outcome.error !== undefined) log.error({ command }, `--on-refresh command could not start: ${outcome.error.message}`);
      else if (outcome.code !== 0) log.error({ command, exitCode: outcome.code, signal: outcome.signal }, '--on-refresh command failed');
      else log.debug({ command }, '--on-refresh command succeeded');
      if (again) {
        again = false;
        run();
      }
    };
    child.once('error', (error) => { finish({ error }); });
    child.once('exit', (code, signal) => { finish({ code, signal }); });
  };
  return run;
}
