import type { Config } from './config.ts';
import { optionError, type Source } from './option-error.ts';
import { OPTION_NAMES, OPTIONS, optionsOf, type Command, type OptionName, type OptionValues } from './options.ts';
import { checkTlsPair, readCaBundle } from './pem-files.ts';
import { validate } from './validate.ts';

export type FlagValues = Partial<Record<OptionName, string | boolean>>;

/**
 * Flags, then environment, then defaults → the frozen Config the core trusts, for one command:
 * 1. Each option the command reads is taken from its flag, else its variable (empty counts as unset), else its
 *    default, and parsed by the table's parser. Options the command does not read keep their defaults; their
 *    flags are refused by the command line and their variables are not looked at, so a `check` probe is never
 *    failed by the daemon's settings. Unknown EK_* variables are never looked at (Kubernetes service links).
 * 2. validate() applies the rules across options.
 * 3. The PEM files are read and checked (the only I/O).
 * Throws a ConfigError naming the option (and its variable, when the value came from there).
 */
export async function resolveConfig(flags: FlagValues, env: NodeJS.ProcessEnv, command: Command = 'run'): Promise<Config> {
  const used = new Set(optionsOf(command));
  const sources = new Map<OptionName, Source>();
  const values: Partial<Record<OptionName, unknown>> = {};
  for (const name of OPTION_NAMES) {
    const spec = OPTIONS[name];
    let text: string | undefined = spec.default;
    const flag = flags[name];
    const fromEnv = env[spec.env];
    if (used.has(name) && flag !== undefined) {
      text = String(flag);
      sources.set(name, 'flag');
    } else if (used.has(name) && fromEnv !== undefined && fromEnv !== '') {
      text = fromEnv;
      sources.set(name, 'env');
    }
    if (text === undefined) continue;
    const parsed = await spec.parse(text);
    if (!parsed.ok) throw optionError(name, sources, parsed.error, text);
    values[name] = parsed.value;
  }
  // Each value came from its own option's parser (or is absent where the table has no default).
  const config = validate({ values: values as OptionValues, sources, used, envApiToken: env.EK_API_TOKEN });

  let caPem: string | undefined;
  if (config.caFile !== undefined) {
    const read = readCaBundle(config.caFile);
    if (!read.ok) throw optionError('ca-file', sources, read.error);
    caPem = read.value;
  }
  if (config.tls !== undefined) {
    const problem = checkTlsPair(config.tls.certFile, config.tls.keyFile);
    if (problem !== undefined) throw optionError(problem.option, sources, problem.message);
  }
  return deepFreeze({ ...config, caPem });
}

function deepFreeze<T extends object>(value: T): Readonly<T> {
  for (const child of Object.values(value)) if (typeof child === 'object' && child !== null) deepFreeze(child as object);
  return Object.freeze(value);
}
