import { hideBin } from 'yargs/helpers';
import { checkJwtFile } from './commands/check.ts';
import type { Config } from './config/config.ts';
import { nameFlags, parseCommandLine, type Invocation } from './config/command-line.ts';
import { resolveConfig } from './config/resolve-config.ts';
import { ConfigError, DiskError, describeError } from './core/errors.ts';
import { looksSecret, redact } from './core/redact.ts';

export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;

const NOT_SHOWN = '(a value that is not shown)';

/**
 * Parse argv and env, run the command, and resolve with the process exit code. Never throws.
 *
 * What each command loads: `check` (an exec probe, run every few seconds) takes the static path only: yargs, the
 * option table and its pure parsers, and commands/check.ts with the disk reader it needs. `run` and `once` reach the
 * runtime (pino, undici, prom-client, chokidar, the hook runner) through the dynamic imports below, which the
 * one-file bundle keeps lazy (esbuild wraps them in init functions that only those imports call; the Node built-ins
 * they use, such as node:http, stay top-level imports of the bundle); the `--on-refresh` parser and shell-quote are
 * imported by the option table only when the option is given. test/blackbox/check-imports.test.ts holds `check` to
 * this.
 */
export async function main(argv: readonly string[] = hideBin(process.argv), env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let invocation: Invocation | undefined;
  let config: Config;
  try {
    invocation = await parseCommandLine(argv);
    if (invocation === undefined) return EXIT_OK; // --help or --version was printed
    config = await resolveConfig(invocation.flags, env, invocation.command);
  } catch (error) {
    return usageFailure(error, argv);
  }
  return execute(invocation.command, config);
}

async function execute(command: Invocation['command'], config: Config): Promise<number> {
  if (command === 'check') {
    const result = await checkJwtFile(config, Date.now());
    process.stdout.write(result.stdout);
    process.stderr.write(result.stderr);
    return result.code;
  }
  const { createLogger } = await import('./observe/log.ts');
  const log = await createLogger({ level: config.logLevel, format: config.logFormat });
  try {
    if (command === 'once') return await (await import('./commands/once.ts')).runOnce(config, log);
    return await (await import('./commands/run.ts')).runDaemon(config, log);
  } catch (error) {
    // Printed once, as one plain line on stderr like every other reason the process ends at start.
    process.stderr.write(`ek-sidecar: ${redact(startFailure(error))}\n`);
    return EXIT_RUNTIME;
  }
}

/** One line on stderr, never a secret: an argument shaped like a token is not echoed, whatever yargs said of it. */
function usageFailure(error: unknown, argv: readonly string[]): number {
  let message = nameFlags(firstLine(error instanceof Error ? error.message : String(error)), argv);
  for (const arg of argv.filter((text) => looksSecret(text))) {
    // yargs and the boolean check quote the argument, or only its value after `=` or the dashes.
    for (const shown of [arg, arg.slice(arg.indexOf('=') + 1), arg.replace(/^-+/, '')]) message = message.split(shown).join(NOT_SHOWN);
  }
  // A ConfigError is already safe (and may name a dotted path the redactor would mangle); yargs' words are not.
  if (!(error instanceof ConfigError)) message = `${redact(message)} (see --help)`;
  process.stderr.write(`ek-sidecar: ${message}\n`);
  return EXIT_USAGE;
}

function startFailure(error: unknown): string {
  if (error instanceof DiskError) return `cannot write the JWT file ${error.message}`;
  const code = error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
  if (code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL' || code === 'EACCES') return `cannot listen: ${describeError(error)}`;
  return error instanceof Error ? describeError(error) : 'start failed';
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}
