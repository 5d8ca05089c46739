import { parse } from 'shell-quote';
import { fail, ok, type Parsed } from './values.ts';

/**
 * Split `--on-refresh` into argv the way a shell splits words (quotes honoured), without running a shell. Shell
 * operators (pipes, redirections, `;`, `&&`) have no meaning without a shell, so they are refused rather than
 * passed through as literal words; a glob stays a literal word. Only `run` uses the option, and this module (with
 * shell-quote) is imported on demand by the option table, so `check` never loads it.
 */
export function parseHookCommand(text: string): Parsed<readonly string[]> {
  // Keep `$VAR` literal: expanding it is a shell's job, and the process environment is not ours to splice in.
  const entries = parse(text, (name) => `$${name}`);
  const argv: string[] = [];
  for (const entry of entries) {
    if (typeof entry === 'string') argv.push(entry);
    else if ('op' in entry && entry.op === 'glob') argv.push(entry.pattern);
    else return fail(`shell operators such as ${'op' in entry ? entry.op : 'comments'} are not supported: the command runs without a shell`);
  }
  if (argv.length === 0) return fail('the command is empty');
  return ok(argv);
}
