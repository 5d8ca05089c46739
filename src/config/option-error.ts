import { ConfigError } from '../core/errors.ts';
import { redact, looksSecret } from '../core/redact.ts';
import { OPTIONS, type OptionName } from './options.ts';

/** Where a given value came from; an option absent from the map took its default. */
export type Source = 'flag' | 'env';
export type Sources = ReadonlyMap<OptionName, Source>;

const NOT_SHOWN = '(the value is not shown)';

/**
 * A ConfigError for one option: it names the flag, or the variable when the value came from the environment (so the
 * manifest line is easy to find). Nothing secret is echoed: a value shaped like a token or JWT is replaced wherever
 * the message quotes it (or a part of it), and the message goes through the redactor (URL credentials blanked). Path options are
 * shown as given: parsePath has already refused the credential shapes, and the redactor would mangle dotted names.
 */
export function optionError(name: OptionName, sources: Sources, message: string, given?: string): ConfigError {
  const spec = OPTIONS[name];
  let text = message;
  if (spec.kind !== 'path') {
    if (given !== undefined && looksSecret(given)) {
      for (const shown of new Set([given, given.trim()])) if (shown !== '') text = text.split(shown).join(NOT_SHOWN);
      // Parsers quote what they refuse, sometimes only a part of the value (a host, a list item): hide every quote.
      text = text.replace(/"[^"]*"/g, NOT_SHOWN);
    }
    text = redact(text);
  }
  const error = new ConfigError(name, text);
  if (sources.get(name) === 'env') error.message = `${spec.env} (--${name}): ${text}`;
  return error;
}
