import type { DestinationStream } from 'pino';

/**
 * `--log-format text`: pino's JSON line re-rendered as one line for a terminal:
 *   2026-04-30T12:00:00.000Z INFO  ek-sidecar started tokenApi.address=127.0.0.1 tokenApi.port=9731 metrics=off
 * time, level, message, then the fields as logfmt `key=value` (nested objects as dotted keys, strings quoted when
 * needed). Synchronous and in-process: no worker thread, nothing buffered that a crash could lose. Control and
 * bidirectional-override characters are escaped everywhere, so a hook's output cannot move the cursor or fake a
 * line on the operator's terminal.
 */
export function textLines(sink: DestinationStream): DestinationStream {
  return { write: (line: string) => { sink.write(toTextLine(line)); } };
}

const LEVEL_LABELS: Readonly<Record<string, string>> = {
  trace: 'TRACE', debug: 'DEBUG', info: 'INFO ', warn: 'WARN ', error: 'ERROR', fatal: 'FATAL',
};

/** Characters a terminal may act on: C0 controls, DEL, C1 controls, line/paragraph separators, bidi overrides. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'g');
const SHORT_ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

export function toTextLine(jsonLine: string): string {
  let record: unknown;
  try {
    record = JSON.parse(jsonLine);
  } catch {
    return jsonLine; // not pino's: pass it on untouched rather than lose it
  }
  if (!isRecord(record)) return jsonLine;
  const { time, level, msg, ...fields } = record;
  // `name` is the constant `ek-sidecar` of every line: noise on a terminal.
  delete fields.name;
  const head = [
    typeof time === 'string' ? time : '',
    typeof level === 'string' ? (LEVEL_LABELS[level] ?? level.toUpperCase()) : '',
    typeof msg === 'string' ? escapeUnsafe(msg) : '',
  ];
  const pairs: string[] = [];
  flatten('', fields, pairs);
  return `${[...head, ...pairs].filter((part) => part !== '').join(' ')}\n`;
}

function flatten(prefix: string, value: Record<string, unknown>, out: string[]): void {
  for (const [key, field] of Object.entries(value)) {
    const name = prefix === '' ? escapeUnsafe(key) : `${prefix}.${escapeUnsafe(key)}`;
    if (isRecord(field)) flatten(name, field, out);
    else out.push(`${name}=${formatValue(field)}`);
  }
}

function formatValue(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text === '' || /[\s"=\\]/.test(text) || UNSAFE.test(text) ? quote(text) : text;
}

/** A double-quoted string with JSON's escapes, plus the characters JSON.stringify leaves alone. */
function quote(text: string): string {
  return escapeUnsafe(JSON.stringify(text));
}

function escapeUnsafe(text: string): string {
  return text.replace(UNSAFE_ALL, (char) => SHORT_ESCAPES[char] ?? `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
