/** One line of a hook's output, without its line ending. */
export interface OutputLine {
  readonly text: string;
  /** The line was longer than the bound; only its start is kept. */
  readonly truncated: boolean;
}

/**
 * Splits a child's output into lines while holding at most `maxLineBytes` of the current line: the rest of a longer
 * line is dropped, so a hook that prints a gigabyte without a newline costs us a few KiB. (readline and split2 keep
 * or reject a whole long line; we want its start, bounded.) Bytes are decoded per line, so a multi-byte character cut
 * by the bound becomes U+FFFD rather than corrupting the next line.
 */
export class LineSplitter {
  readonly #maxLineBytes: number;
  #parts: Buffer[] = [];
  #size = 0;
  #truncated = false;

  constructor(maxLineBytes: number) {
    this.#maxLineBytes = maxLineBytes;
  }

  /** The lines that `chunk` completes. */
  push(chunk: Buffer): OutputLine[] {
    const lines: OutputLine[] = [];
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      this.#keep(chunk.subarray(start, newline < 0 ? chunk.length : newline));
      if (newline < 0) return lines;
      lines.push(this.#take());
      start = newline + 1;
    }
  }

  /** The last line, if the output did not end with a newline. */
  end(): OutputLine[] {
    return this.#size > 0 || this.#truncated ? [this.#take()] : [];
  }

  #keep(bytes: Buffer): void {
    const room = this.#maxLineBytes - this.#size;
    if (bytes.length > room) this.#truncated = true;
    const kept = bytes.subarray(0, Math.max(0, room));
    if (kept.length === 0) return;
    // A copy: a slice would pin the whole chunk it came from.
    this.#parts.push(Buffer.from(kept));
    this.#size += kept.length;
  }

  #take(): OutputLine {
    const text = Buffer.concat(this.#parts).toString('utf8').replace(/\r$/, '');
    const line = { text, truncated: this.#truncated };
    this.#parts = [];
    this.#size = 0;
    this.#truncated = false;
    return line;
  }
}
