// Progress on stderr, so that stdout carries only the table.
const start = performance.now();

export function progress(message: string): void {
  process.stderr.write(`bench [${((performance.now() - start) / 1000).toFixed(1)} s] ${message}\n`);
}
