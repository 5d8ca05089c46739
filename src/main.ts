import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { checkJwtFile } from './commands/check.ts';
import type { Config } from './config/config.ts';
import { ConfigError, DiskError } from './core/errors.ts';
import { OPTIONS } from './config/options.ts';
import { resolveConfig, type FlagValues } from './config/resolve-config.ts';
import { VERSION } from './core/version.ts';

export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;

type Command = 'run' | 'once' | 'check';

/** Raised inside yargs and by config validation: printed as one line, exit 2. */
class UsageError extends Error {}

/** Parse argv and env, run the command, and resolve with the process exit code. Never throws. */
export async function main(argv: readonly string[] = hideBin(process.argv), env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let chosen: { command: Command; flags: FlagValues } | undefined;
  try {
    rejectBadBooleanValues(argv);
    await buildParser(argv, (command, flags) => { chosen = { command, flags }; }).parseAsync();
  } catch (error) {
    return usageFailure(error, argv);
  }
  if (chosen === undefined) return EXIT_OK; // --help or --version was printed
  let config: Config;
  try {
    config = resolveConfig(chosen.flags, env);
  } catch (error) {
    return usageFailure(error);
  }
  return execute(chosen.command, config);
}

async function execute(command: Command, config: Config): Promise<number> {
  if (command === 'check') {
    const result = await checkJwtFile(config, Date.now());
    process.stdout.write(result.stdout);
    process.stderr.write(result.stderr);
    return result.code;
  }
  // Loaded on demand: `check` runs as an exec probe, and should not pay for undici, prom-client and chokidar.
  const { createLogger } = await import('./observe/log.ts');
  const log = await createLogger({ level: config.logLevel, format: config.logFormat });
  try {
    if (command === 'once') return await (await import('./commands/once.ts')).runOnce(config, log);
    return await (await import('./commands/run.ts')).runDaemon(config, log);
  } catch (error) {
    const message = error instanceof DiskError ? `cannot write the JWT file ${error.message}` : startFailure(error);
    log.fatal(message);
    process.stderr.write(`ek-sidecar: ${message}\n`);
    return EXIT_RUNTIME;
  }
}

function buildParser(argv: readonly string[], choose: (command: Command, flags: FlagValues) => void): Argv {
  const parser = yargs([...argv])
    .scriptName('ek-sidecar')
    .usage('$0 [run|once|check] [options]\n\nKeeps a fresh Enkryptify JWT on a shared volume and on loopback, within the upstream rate limit.')
    .parserConfiguration({ 'duplicate-arguments-array': false, 'camel-case-expansion': false })
    .version(VERSION)
    .help()
    .alias('help', 'h')
    .strict()
    .exitProcess(false)
    .wrap(Math.min(120, process.stdout.columns || 100))
    .epilogue('Every option is also an environment variable (shown in brackets); flags win. For local development only, EK_API_TOKEN may hold the token itself when no token file is given explicitly.\nExit codes: 0 ok, 1 runtime failure, 2 bad configuration or usage.')
    .fail((message: string | null, error: Error | undefined) => {
      throw error ?? new UsageError(message ?? 'invalid usage');
    });
  for (const option of OPTIONS) {
    parser.option(option.flag, {
      type: option.kind,
      describe: `${option.describe} [${option.env}]`,
      ...(option.default === undefined ? {} : { defaultDescription: option.default }),
      global: true,
    });
  }
  const handler = (command: Command) => (args: Record<string, unknown>): void => { choose(command, pickFlags(args)); };
  return parser
    .command(['run', '$0'], 'run the daemon (default)', {}, handler('run'))
    .command('once', 'obtain a valid JWT (reusing a fresh one on disk), write it and exit: for init containers and Jobs', {}, handler('once'))
    .command('check', 'print the JWT file\'s expiry and seconds left; exit 0 if valid for at least --min-ttl, else 1', {}, handler('check'));
}

function pickFlags(args: Record<string, unknown>): FlagValues {
  const flags: FlagValues = {};
  for (const option of OPTIONS) {
    const value = args[option.flag];
    if (typeof value === 'string' || typeof value === 'boolean') flags[option.flag] = value;
  }
  return flags;
}

/** yargs reads `--delete-on-exit=maybe` as false; a typo in a manifest must fail instead. */
function rejectBadBooleanValues(argv: readonly string[]): void {
  for (const option of OPTIONS) {
    if (option.kind !== 'boolean') continue;
    const prefix = `--${option.flag}=`;
    const given = argv.find((arg) => arg.startsWith(prefix));
    if (given !== undefined && !['true', 'false', '1', '0'].includes(given.slice(prefix.length))) {
      throw new ConfigError(option.flag, `"${given.slice(prefix.length)}" is not a boolean (true, false, 1 or 0)`);
    }
  }
}

function usageFailure(error: unknown, argv: readonly string[] = []): number {
  const message = nameFlags(error instanceof Error ? error.message : String(error), argv);
  const hint = error instanceof ConfigError ? '' : ' (see --help)';
  process.stderr.write(`ek-sidecar: ${firstLine(message)}${hint}\n`);
  return EXIT_USAGE;
}

function startFailure(error: unknown): string {
  if (!(error instanceof Error)) return 'start failed';
  const code = 'code' in error && typeof error.code === 'string' ? error.code : undefined;
  if (code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL' || code === 'EACCES') return `cannot listen: ${error.message}`;
  return error.message;
}

/**
 * yargs says "Unknown argument: foo"; name it as the user typed it. A value that starts with a dash (`--min-ttl -5s`)
 * is read by yargs as more flags: name the option it was meant for instead.
 */
function nameFlags(message: string, argv: readonly string[]): string {
  const match = /^Unknown arguments?: (.*)$/.exec(message);
  if (match?.[1] === undefined) return message;
  const stringOptions = new Set<string>(OPTIONS.filter((option) => option.kind === 'string').map((option) => `--${option.flag}`));
  const index = argv.findIndex((arg, i) => i > 0 && arg.startsWith('-') && stringOptions.has(argv[i - 1] ?? ''));
  if (index > 0) return `${argv[index - 1] ?? ''}: "${argv[index] ?? ''}" is not a valid value`;
  const names = match[1].split(', ').map((name) => {
    const typed = argv.find((arg) => [`--${name}`, `--no-${name}`].some((flag) => arg === flag || arg.startsWith(`${flag}=`)));
    return typed === undefined ? name : typed.split('=')[0] ?? name;
  });
  return `unknown ${names.length > 1 ? 'arguments' : 'argument'} ${names.join(', ')}`;
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}
