// `npm test` after the build: two lanes at once, so that the unit tier (one process) fills the time the black-box
// tier spends waiting on daemons and timers. The black-box lane streams; the other lane's output is printed whole
// when it ends, so the two never interleave line by line. Exit 1 if any step failed. The type check and eslint are
// `npm run lint`, and the slow tier `npm run test:slow`: CI runs all three.
import { spawn } from 'node:child_process';

const NODE = process.execPath;

/**
 * Node's compile cache for the test processes: each black-box file is a process of its own that compiles the same
 * helpers, testkit and type-stripped sources; from the cache, a file starts with about a third less CPU. The daemons
 * under test never see it (they start with only the environment a test gives them).
 */
const COMPILE_CACHE = { NODE_COMPILE_CACHE: 'node_modules/.cache/ek-sidecar-tests' };

interface Step {
  readonly args: readonly string[];
}

/**
 * Black-box files at once. Most of a black-box file's time is waiting (for a refresh point, a backoff, a daemon's
 * start), so 4 files overlap their waits; the tier is CPU-bound on 2 cores beyond that.
 */
const BLACKBOX_CONCURRENCY = '4';

const LANES: readonly { readonly name: string; readonly stream: boolean; readonly steps: readonly Step[] }[] = [
  {
    name: 'unit tier',
    stream: false,
    steps: [
      // Unit tests are pure functions and fakes: one process for the tier saves a Node start-up per file.
      { args: ['--test', '--test-isolation=none', '--test-timeout=60000', 'test/unit/**/*.test.ts'] },
    ],
  },
  {
    name: 'black-box tier and testkit',
    stream: true,
    steps: [
      {
        args: ['--test', `--test-concurrency=${BLACKBOX_CONCURRENCY}`, '--test-timeout=180000',
          'test/blackbox/**/*.test.ts', 'test/testkit/**/*.test.ts'],
      },
    ],
  },
];

function runStep(step: Step, stream: boolean, output: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(NODE, step.args, { env: { ...process.env, ...COMPILE_CACHE }, stdio: stream ? 'inherit' : 'pipe' });
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
