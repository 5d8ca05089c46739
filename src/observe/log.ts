import { pino, stdTimeFunctions, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../config/config.ts';

/**
 * One pino logger, JSON lines on stdout. Secrets are kept out by construction (we log fingerprints and messages,
 * never token or JWT values); the redaction below is only a second net for field names that might carry one.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { name: 'ek-sidecar' },
    timestamp: stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    redact: {
      paths: ['token', 'apiToken', 'jwt', 'accessToken', 'authorization', 'headers.authorization', '*.token', '*.jwt', '*.accessToken'],
      censor: '[redacted]',
    },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}

export type { Logger };
