import yargs, { type Argv } from 'yargs';
import { ConfigError } from '../core/errors.ts';
import { VERSION } from '../core/version.ts';
import { COMMANDS, OPTIONS, optionsOf, type Command } from './options.ts';
import type { FlagValues } from './resolve-config.ts';

/** A usage mistake that yargs found (unknown flag or command, missing value): printed as one line, exit 2. */
export class UsageError extends Error {}

export interface Invocation {
  readonly command: Command;
  readonly flags: FlagValues;
}

const ABOUT = 'Keeps a fresh Enkryptify JWT on a shared volume and on loopback, within the upstream rate limit.';
const SUMMARY: Record<Command, string> = {
  run: 'run the daemon (the default command; `run` may be written)',
  once: 'obtain a valid JWT (reusing a fresh one on disk), write it and exit: for init containers and Jobs',
  check: 'print the JWT file\'s expiry and seconds left; exit 0 if valid for at least --min-ttl, else 1',
};
const EXIT_CODES = 'Exit codes: 0 ok, 1 runtime failure, 2 bad configuration or usage.';
const ENV_NOTE = 'Every option is also an environment variable (shown in brackets); flags win.';
const API_TOKEN_NOTE = 'For local development only, EK_API_TOKEN may hold the API token itself when no token file is given explicitly.';

/**
 * Parse argv into the command and the flags it was given; undefined when --help or --version was printed. Each
 * command offers only the options it reads (`check --help` shows two). yargs renders and caches a named command's
 * help on every run of it (100–250 ms of text layout at each start of `once`, and of every `check` probe), so the
 * command word is taken off before yargs sees it and the default command stands for it; only when help or the
 * version is asked for does yargs see `once` or `check` (`ek-sidecar run --help` is the default command's help).
 */
export async function parseCommandLine(argv: readonly string[]): Promise<Invocation | undefined> {
  const { command: given, args } = takeCommandWord(argv);
  rejectBadBooleanValues(args);
  let chosen: Invocation | undefined;
  const handler = (command: Command) => (parsed: Record<string, unknown>): void => { chosen = { command, flags: pickFlags(command, parsed) }; };
  const parser = yargs(args)
    .scriptName('ek-sidecar')
    .parserConfiguration({ 'duplicate-arguments-array': false, 'camel-case-expansion': false })
    .version(VERSION)
    .help()
    .alias('help', 'h')
    .strict()
    .exitProcess(false)
    .wrap(Math.min(120, process.stdout.columns || 100))
    .fail((message: string | null, error: Error | undefined) => {
      throw error ?? new UsageError(message ?? 'invalid usage');
    })
    .usage(`$0 [run|once|check] [options]\n\n${ABOUT}`)
    .command('$0', SUMMARY.run, (y) => withOptions(y, given), handler(given))
    .command('once', SUMMARY.once, (y) => withOptions(y, 'once').usage(`$0 once [options]\n\n${SUMMARY.once}`), handler('once'))
    .command('check', SUMMARY.check, (y) => withOptions(y, 'check').usage(`$0 check [options]\n\n${SUMMARY.check}`), handler('check'));
  await parser.parseAsync();
  return chosen;
}

/** The flags that make yargs print instead of run: a named command must then stay, for its own help. */
const PRINTING = new Set(['--help', '-h', '--version']);

/**
 * The command named by the first word that is not a flag or a flag's value, and argv without that word (`run`
 * always; `once` and `check` unless help or the version is asked for). A second command word is a usage error.
 */
function takeCommandWord(argv: readonly string[]): { command: Command; args: string[] } {
  const takesValue = new Set(Object.entries(OPTIONS).filter(([, spec]) => spec.kind !== 'boolean').map(([name]) => `--${name}`));
  const isWord = (list: readonly string[]) => (arg: string, i: number): boolean => !arg.startsWith('-') && !takesValue.has(list[i - 1] ?? '');
  const first = argv.findIndex(isWord(argv));
  const word = COMMANDS.find((name) => name === argv[first]);
  if (word === undefined) return { command: 'run', args: [...argv] };
  if (word !== 'run' && argv.some((arg) => PRINTING.has(arg))) return { command: 'run', args: [...argv] };
  const rest = [...argv.slice(0, first), ...argv.slice(first + 1)];
  const next = rest.slice(first).find((arg, i) => isWord(rest)(arg, first + i));
  if (next !== undefined && (COMMANDS as readonly string[]).includes(next)) throw new UsageError(`Unknown argument: ${next}`);
  return { command: word, args: rest };
}

/**
 * Every option is accepted by every command, so one argument list serves the sidecar, its `once` init container and
 * a `check` probe; each command shows in its help, validates and reads only the options it uses, and ignores the rest.
 */
function withOptions(parser: Argv, command: Command): Argv {
  const own = new Set<string>(optionsOf(command));
  for (const [name, spec] of Object.entries(OPTIONS)) {
    parser.option(name, {
      type: spec.kind === 'boolean' ? 'boolean' : 'string',
      describe: `${spec.describe} [${spec.env}]`,
      hidden: !own.has(name),
      ...(spec.default === undefined ? {} : { defaultDescription: spec.default }),
    });
  }
  return parser.epilogue([ENV_NOTE, ...(own.has('token-file') ? [API_TOKEN_NOTE] : []), EXIT_CODES].join('\n'));
}

function pickFlags(command: Command, parsed: Record<string, unknown>): FlagValues {
  const flags: FlagValues = {};
  for (const name of optionsOf(command)) {
    const value = parsed[name];
    if (typeof value === 'string' || typeof value === 'boolean') flags[name] = value;
  }
  return flags;
}

/** yargs reads `--delete-on-exit=maybe` as false; a typo in a manifest must fail instead. */
function rejectBadBooleanValues(argv: readonly string[]): void {
  for (const [name, spec] of Object.entries(OPTIONS)) {
    if (spec.kind !== 'boolean') continue;
    const prefix = `--${name}=`;
    const given = argv.find((arg) => arg.startsWith(prefix));
    if (given !== undefined && !['true', 'false', '1', '0'].includes(given.slice(prefix.length))) {
      throw new ConfigError(name, `"${given.slice(prefix.length)}" is not a boolean (true, false, 1 or 0)`);
    }
  }
}

/**
 * yargs says "Unknown argument: foo"; name it as the user typed it, and say so when it is an option of another
 * command (`check --timeout`). A value that starts with a dash (`--min-ttl -5s`) is read by yargs as more flags:
 * name the option it was meant for instead.
 */
export function nameFlags(message: string, argv: readonly string[]): string {
  const match = /^Unknown arguments?: (.*)$/.exec(message);
  if (match?.[1] === undefined) return message;
  const stringOptions = new Set<string>(Object.entries(OPTIONS).filter(([, spec]) => spec.kind !== 'boolean').map(([name]) => `--${name}`));
  const index = argv.findIndex((arg, i) => i > 0 && arg.startsWith('-') && stringOptions.has(argv[i - 1] ?? ''));
  if (index > 0) return `${argv[index - 1] ?? ''}: "${argv[index] ?? ''}" is not a valid value`;
  const command = COMMANDS.find((name) => name === argv[0]) ?? 'run';
  const names = match[1].split(', ').map((name) => {
    const typed = argv.find((arg) => [`--${name}`, `--no-${name}`].some((flag) => arg === flag || arg.startsWith(`${flag}=`)));
    return typed === undefined ? name : typed.split('=')[0] ?? name;
  });
  const elsewhere = names.map((name) => Object.entries(OPTIONS).find(([option]) => `--${option}` === name || `--no-${option}` === name)).find((entry) => entry !== undefined);
  const hint = elsewhere === undefined ? '' : ` (--${elsewhere[0]} is an option of ${elsewhere[1].commands.join(' and ')}, not of ${command})`;
  return `unknown ${names.length > 1 ? 'arguments' : 'argument'} ${names.join(', ')}${hint}`;
}
