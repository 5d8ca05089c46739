import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LineSplitter, type OutputLine } from '../../src/hooks/output-lines.ts';

function split(chunks: readonly (string | Buffer)[], maxLineBytes = 8): OutputLine[] {
  const splitter = new LineSplitter(maxLineBytes);
  const lines = chunks.flatMap((chunk) => splitter.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk));
  return [...lines, ...splitter.end()];
}

const ok = (text: string): OutputLine => ({ text, truncated: false });
const cut = (text: string): OutputLine => ({ text, truncated: true });

void describe('LineSplitter', () => {
  const table: readonly { name: string; chunks: readonly (string | Buffer)[]; expected: readonly OutputLine[] }[] = [
    { name: 'nothing', chunks: [], expected: [] },
    { name: 'one line with a newline', chunks: ['abc\n'], expected: [ok('abc')] },
    { name: 'one line without a newline', chunks: ['abc'], expected: [ok('abc')] },
    { name: 'several lines in one chunk', chunks: ['a\nb\nc\n'], expected: [ok('a'), ok('b'), ok('c')] },
    { name: 'a line across chunks', chunks: ['ab', 'cd', 'e\nf'], expected: [ok('abcde'), ok('f')] },
    { name: 'CRLF endings', chunks: ['a\r\nb\r\n'], expected: [ok('a'), ok('b')] },
    { name: 'empty lines are kept (the caller skips them)', chunks: ['\n\na\n'], expected: [ok(''), ok(''), ok('a')] },
    { name: 'exactly the bound', chunks: ['12345678\n'], expected: [ok('12345678')] },
    { name: 'a long line keeps its start', chunks: ['123456789abc\nnext\n'], expected: [cut('12345678'), ok('next')] },
    { name: 'a long line across chunks', chunks: ['12345', '6789', 'abc', '\nx'], expected: [cut('12345678'), ok('x')] },
    { name: 'a long last line without newline', chunks: ['123456789'], expected: [cut('12345678')] },
    { name: 'a cut multi-byte character does not leak into the next line', chunks: ['1234567é\nz\n'], expected: [cut('1234567\ufffd'), ok('z')] },
    { name: 'a multi-byte character split across chunks', chunks: [Buffer.from([0x61, 0xc3]), Buffer.from([0xa9, 0x0a])], expected: [ok('aé')] },
  ];
  for (const row of table) {
    void it(row.name, () => { assert.deepEqual(split(row.chunks), row.expected); });
  }

  void it('holds at most the bound of a line, however much arrives', () => {
    const splitter = new LineSplitter(1_024);
    const megabyte = Buffer.alloc(1 << 20, 0x41);
    for (let i = 0; i < 64; i += 1) assert.deepEqual(splitter.push(megabyte), []);
    const [line] = splitter.push(Buffer.from('\n'));
    assert.equal(line?.text.length, 1_024);
    assert.equal(line.truncated, true);
  });
});
