import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LogFormat } from '../../src/config/config.ts';
import { createLogger, type Logger } from '../../src/observe/log.ts';
import { toTextLine } from '../../src/observe/log-text.ts';

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
const TOKEN = 'ek_live_logtest_0123456789SECRET';
const JWT = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'secret-subject', exp: 1_900_000_000 })}.c2lnbmF0dXJlLXNpZ25hdHVyZQ`;
const SECRETS = [TOKEN, 'SECRET', JWT, ...JWT.split('.')];

async function capture(format: LogFormat, level: 'trace' | 'info' = 'trace'): Promise<{ log: Logger; lines: string[] }> {
  const lines: string[] = [];
  const log = await createLogger({ level, format, destination: { write: (line: string) => { lines.push(line); } } });
  return { log, lines };
}

function assertNoSecret(lines: readonly string[]): void {
  const text = lines.join('');
  for (const secret of SECRETS) assert.ok(!text.includes(secret), `${secret.slice(0, 10)}… leaked: ${text}`);
}

/** Every way a secret can reach a log call; each must come out redacted in both formats. */
const LEAKS: readonly { name: string; emit: (log: Logger) => void }[] = [
  { name: 'in the message', emit: (log) => { log.info(`token ${TOKEN} and jwt ${JWT}`); } },
  { name: 'in an interpolated argument', emit: (log) => { log.warn('got %s', TOKEN); } },
  { name: 'in a field', emit: (log) => { log.info({ path: TOKEN }, 'bad path'); } },
  { name: 'in a nested field', emit: (log) => { log.info({ upstream: { body: { message: `echo ${JWT}` } } }, 'upstream said'); } },
  { name: 'in an array field', emit: (log) => { log.info({ list: ['a', TOKEN] }, 'list'); } },
  { name: 'in a child binding', emit: (log) => { log.child({ source: `EK_TOKEN_FILE=${TOKEN}` }).info('child'); } },
  { name: 'in an error', emit: (log) => { log.error({ err: new Error(`refused ${TOKEN}`) }, 'failed'); } },
  { name: 'as the error itself', emit: (log) => { log.error(new Error(`refused ${JWT}`)); } },
  { name: 'after a newline in the message', emit: (log) => { log.info(`line one\n${JWT}\n${TOKEN}`); } },
  { name: 'in a field named like a secret', emit: (log) => { log.info({ token: 'opaque-not-shaped', jwt: 'x' }, 'named'); } },
];

for (const format of ['json', 'text'] as const) {
  void describe(`createLogger (${format}): one redactor on everything written`, () => {
    for (const row of LEAKS) {
      void it(row.name, async () => {
        const { log, lines } = await capture(format);
        row.emit(log);
        assert.equal(lines.length, 1);
        assertNoSecret(lines);
        assert.match(lines[0] ?? '', /\[redacted\]/);
        assert.ok(!(lines[0] ?? '').includes('opaque-not-shaped'));
      });
    }

    void it('keeps harmless content intact', async () => {
      const { log, lines } = await capture(format);
      log.info({ version: '0.1.0', host: 'api.enkryptify.com', fingerprint: '3fa9c2d1', at: '2026-04-30T12:00:00.000Z' }, 'ek-sidecar started');
      for (const part of ['0.1.0', 'api.enkryptify.com', '3fa9c2d1', '2026-04-30T12:00:00.000Z', 'ek-sidecar started']) {
        assert.ok(lines[0]?.includes(part), `${part} missing from ${lines[0] ?? ''}`);
      }
      assert.ok(!lines[0]?.includes('[redacted]'));
    });

    void it('honours the level', async () => {
      const { log, lines } = await capture(format, 'info');
      log.debug('hidden');
      log.info('shown');
      assert.equal(lines.length, 1);
    });
  });
}

void describe('createLogger json', () => {
  void it('writes one JSON object per line with level label, time and name', async () => {
    const { log, lines } = await capture('json');
    log.info({ jwtFile: '/run/jwt' }, 'hello');
    const record = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
    assert.equal(record.level, 'info');
    assert.equal(record.msg, 'hello');
    assert.equal(record.name, 'ek-sidecar');
    assert.equal(record.jwtFile, '/run/jwt');
    assert.match(String(record.time), /^\d{4}-\d\d-\d\dT/);
  });
});

void describe('createLogger text', () => {
  void it('writes time, level, message, then key=value fields', async () => {
    const { log, lines } = await capture('text');
    log.info({ tokenApi: { address: '127.0.0.1', port: 9731 }, metrics: 'off', ready: true, note: 'two words', empty: '' }, 'ek-sidecar started');
    assert.equal(lines.length, 1);
    const line = lines[0] ?? '';
    assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO {2}ek-sidecar started tokenApi\.address=127\.0\.0\.1 tokenApi\.port=9731 metrics=off ready=true note="two words" empty=""\n$/);
    assert.ok(!line.includes('{'), 'no JSON');
  });

  void it('renders every level with a fixed-width label', async () => {
    const { log, lines } = await capture('text');
    log.trace('t');
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    log.fatal('f');
    assert.deepEqual(lines.map((line) => line.slice(25, 31)), ['TRACE ', 'DEBUG ', 'INFO  ', 'WARN  ', 'ERROR ', 'FATAL ']);
  });

  void it('renders an error on the same line', async () => {
    const { log, lines } = await capture('text');
    log.error({ err: new Error('disk full') }, 'write failed');
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? '', / ERROR write failed err\.type=Error err\.message="disk full" err\.stack="Error: disk full\\n {4}at /);
  });
});

void describe('toTextLine', () => {
  const time = '2026-04-30T12:00:00.000Z';
  const line = (record: Record<string, unknown>): string => toTextLine(JSON.stringify({ level: 'info', time, name: 'ek-sidecar', ...record }));
  const table: readonly { name: string; record: Record<string, unknown>; expected: string }[] = [
    { name: 'message only', record: { msg: 'hello' }, expected: `${time} INFO  hello` },
    { name: 'no message', record: { a: 1 }, expected: `${time} INFO  a=1` },
    { name: 'numbers, booleans, null', record: { msg: 'm', n: 1.5, b: false, z: null }, expected: `${time} INFO  m n=1.5 b=false z=null` },
    { name: 'strings that need quotes', record: { msg: 'm', eq: 'a=b', quote: 'say "hi"', slash: 'a\\b' }, expected: `${time} INFO  m eq="a=b" quote="say \\"hi\\"" slash="a\\\\b"` },
    { name: 'arrays as quoted JSON', record: { msg: 'm', hosts: ['a', 'b'] }, expected: `${time} INFO  m hosts="[\\"a\\",\\"b\\"]"` },
    { name: 'deeply nested objects', record: { msg: 'm', a: { b: { c: 'd' } } }, expected: `${time} INFO  m a.b.c=d` },
    { name: 'a multi-line message stays on one line', record: { msg: 'one\ntwo\r\tthree' }, expected: `${time} INFO  one\\ntwo\\r\\tthree` },
    { name: 'terminal escapes are neutralised', record: { msg: 'red \u001b[31m bidi \u202e end', f: '\u009b2J' }, expected: `${time} INFO  red \\u001b[31m bidi \\u202e end f="\\u009b2J"` },
    { name: 'unicode text survives', record: { msg: 'déjà vu ✓', f: 'naïve' }, expected: `${time} INFO  déjà vu ✓ f=naïve` },
  ];
  for (const row of table) {
    void it(row.name, () => { assert.equal(line(row.record), `${row.expected}\n`); });
  }

  void it('passes through what is not a JSON object', () => {
    assert.equal(toTextLine('not json\n'), 'not json\n');
    assert.equal(toTextLine('[1,2]\n'), '[1,2]\n');
  });
});
