import { destination as stdoutDestination, pino, stdTimeFunctions, type DestinationStream, type Logger } from 'pino';
import type { LogFormat, LogLevel } from '../config/config.ts';
import { redact } from '../core/redact.ts';

export interface LoggerOptions {
  readonly level: LogLevel;
  /** `json` (default): pino lines; `text`: one readable line per event, for terminals. */
  readonly format?: LogFormat;
  /** Where lines go; stdout when absent (tests capture lines here). */
  readonly destination?: DestinationStream;
}

/**
 * One pino logger. Secrets are kept out by construction (we log fingerprints and messages, never token or JWT
 * values); two nets sit under that. The field-name redaction blanks fields that are named like a secret. The
 * redactor (core/redact.ts) runs over every line as it is written, after pino has serialized it: the message, every
 * field at any depth, child bindings and error stacks all pass through it, whatever the call site did, and a hook's
 * output too. Resolves asynchronously because the text formatter is loaded only when asked for.
 */
export async function createLogger(options: LoggerOptions): Promise<Logger> {
  let sink = options.destination ?? stdoutDestination(1);
  if (options.format === 'text') sink = (await import('./log-text.ts')).textLines(sink);
  return pino({
    level: options.level,
    base: { name: 'ek-sidecar' },
    timestamp: stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    redact: {
      paths: ['token', 'apiToken', 'jwt', 'accessToken', 'authorization', 'headers.authorization', '*.token', '*.jwt', '*.accessToken'],
      censor: '[redacted]',
    },
  }, redacting(sink));
}

/** A destination that redacts each line before passing it on; pino writes one whole line per call. */
export function redacting(sink: DestinationStream): DestinationStream {
  return { write: (line: string) => { sink.write(redact(line)); } };
}

export type { Logger };
