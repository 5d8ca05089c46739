// The baselines are written in TypeScript (type-checked and linted with the rest) but run as plain JavaScript:
// Node's type stripping would add its own start-up cost (~150 ms here) to the baseline, while ek-sidecar runs
// as compiled JavaScript from dist/. So they are transpiled once per run into a temp dir, as dist/ is by tsc.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { BENCH_DIR } from './paths.ts';
import { makeTempDir, spawnNode, type Child } from './processes.ts';
import { waitFor } from './wait.ts';

export interface Baselines {
  /** node:http server serving one body on GET /v1/token behind the header check. Args: BODY_FILE. */
  readonly server: string;
  /** One POST and one file write. Args: API_URL TOKEN_FILE JWT_FILE. */
  readonly exchange: string;
}

let built: Baselines | undefined;

function transpile(name: string, outDir: string): string {
  const source = readFileSync(join(BENCH_DIR, 'baselines', `${name}.ts`), 'utf8');
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { target: ts.ScriptTarget.ES2024, module: ts.ModuleKind.ESNext, verbatimModuleSyntax: true },
    fileName: `${name}.ts`,
  });
  const out = join(outDir, `${name}.mjs`);
  writeFileSync(out, outputText);
  return out;
}

export function baselines(): Baselines {
  if (built === undefined) {
    const dir = makeTempDir('baselines');
    built = { server: transpile('bare-server', dir), exchange: transpile('bare-exchange', dir) };
  }
  return built;
}

export interface BareServer {
  readonly port: number;
  readonly child: Child;
}

/** Start the bare node:http baseline serving the bytes of `bodyFile`. */
export async function startBareServer(bodyFile: string): Promise<BareServer> {
  const child = spawnNode([baselines().server, bodyFile]);
  let out = '';
  child.process.stdout?.setEncoding('utf8').on('data', (chunk: string) => { out += chunk; });
  const port = await waitFor(() => {
    if (!child.alive()) throw new Error('the bare server exited');
    const line = out.split('\n').find((l) => l.startsWith('{'));
    return line === undefined ? undefined : (JSON.parse(line) as { port: number }).port;
  }, 10_000, 'the bare server to listen', 5);
  return { port, child };
}
