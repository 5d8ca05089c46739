// `npm test` after the build: two lanes at once, so that the CPU-bound checks (tsc, then the unit tier in one
// process) fill the time the black-box tier spends waiting on daemons and timers. The black-box lane streams; the
// other lane's output is printed whole when it ends, so the two never interleave line by line. Exit 1 if any
// step failed.
import { spawn } from 'node:child_process';

const NODE = process.execPath;

interface Step {
  readonly args: readonly string[];
  readonly env?: Record<string, string>;
}

/**
 * Black-box files at once. 3 was faster but starved the load-sensitive tests (hardening's SIGHUP-while-loading and
 * rotation storm) on a loaded 2-core machine; the unit lane already runs beside this one.
 */
const BLACKBOX_CONCURRENCY = '2';

const LANES: readonly { readonly name: string; readonly stream: boolean; readonly steps: readonly Step[] }[] = [
  {
    name: 'typecheck and unit tier',
    stream: false,
    steps: [
      { args: ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json', '--noEmit'] },
      // Unit tests are pure functions and fakes: one process for the tier saves a Node start-up per file.
      { args: ['--test', '--test-isolation=none', '--test-timeout=60000', 'test/unit/**/*.test.ts'] },
    ],
  },
  {
    name: 'black-box tier (snapshot build), testkit, and the plain bundle pass',
    stream: true,
    steps: [
      {
        args: ['--test', `--test-concurrency=${BLACKBOX_CONCURRENCY}`, '--test-timeout=180000',
          'test/blackbox/**/*.test.ts', 'test/testkit/**/*.test.ts', 'test/plain/**/*.test.ts'],
      },
    ],
  },
];

function runStep(step: Step, stream: boolean, output: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(NODE, step.args, { env: { ...process.env, ...step.env }, stdio: stream ? 'inherit' : 'pipe' });
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { output.push(chunk); });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { output.push(chunk); });
    child.on('error', (error) => { output.push(`${String(error)}\n`); resolve(1); });
    child.on('close', (code) => { resolve(code ?? 1); });
  });
}

async function runLane(lane: (typeof LANES)[number]): Promise<boolean> {
  const output: string[] = [];
  let ok = true;
  for (const step of lane.steps) {
    const code = await runStep(step, lane.stream, output);
    if (code !== 0) {
      ok = false;
      output.push(`\n✖ ${lane.name}: node ${step.args.join(' ')} exited ${String(code)}\n`);
      break;
    }
  }
  if (!lane.stream) process.stdout.write(`\n── ${lane.name} ──\n${output.join('')}`);
  else if (!ok) process.stdout.write(output.join(''));
  return ok;
}

const results = await Promise.all(LANES.map(runLane));
process.exitCode = results.every(Boolean) ? 0 : 1;
