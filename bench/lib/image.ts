// How the container image starts ek-sidecar, read from the Dockerfile's runtime stage (ENTRYPOINT and ENV), so that
// the bench runs what a pod runs: the same node options (the startup snapshot among them) and the same environment,
// with the image's /app mapped to this checkout. Every other way of starting it is a what-if beside it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DockerfileParser, Entrypoint, Env, From } from 'dockerfile-ast';
import { PROJECT_ROOT } from './paths.ts';

export interface ImageStart {
  /** Node options of the ENTRYPOINT, between the node binary and the script, paths mapped to this checkout. */
  readonly nodeArgs: readonly string[];
  /** The ENV of the runtime stage. */
  readonly env: Readonly<Record<string, string>>;
  /** The script the ENTRYPOINT names, mapped: dist/bin.js. */
  readonly script: string;
  /** How the Dockerfile says it, for notes: the ENTRYPOINT's words and the ENV (no path of this machine). */
  readonly described: string;
}

const IMAGE_ROOT = '/app/';

let cached: ImageStart | undefined;

/**
 * Whether the image sets more than the snapshot (node options, or an environment beyond NODE_ENV): then "from the
 * snapshot, without the image's other settings" is worth a what-if row.
 */
export function imageAddsSettings(): boolean {
  const image = imageStart();
  return image.nodeArgs.some((arg, i) => !(arg === '--snapshot-blob' || image.nodeArgs[i - 1] === '--snapshot-blob'))
    || Object.keys(image.env).some((key) => key !== 'NODE_ENV');
}

export function imageStart(): ImageStart {
  if (cached !== undefined) return cached;
  const instructions = DockerfileParser.parse(readFileSync(join(PROJECT_ROOT, 'Dockerfile'), 'utf8')).getInstructions();
  const lastFrom = instructions.findLastIndex((instruction) => instruction instanceof From);
  const runtime = instructions.slice(lastFrom + 1);
  const entrypoint = runtime.filter((instruction) => instruction instanceof Entrypoint).at(-1);
  if (entrypoint === undefined) throw new Error('the Dockerfile\'s runtime stage has no ENTRYPOINT');
  const words = entrypoint.getJSONStrings().map((word) => word.getJSONValue());
  const mapped = words.slice(1).map((word) => (word.startsWith(IMAGE_ROOT) ? join(PROJECT_ROOT, word.slice(IMAGE_ROOT.length)) : word));
  const script = mapped.at(-1);
  if (script?.endsWith('.js') !== true) throw new Error(`the ENTRYPOINT does not end with a script: ${words.join(' ')}`);
  const env: Record<string, string> = {};
  for (const instruction of runtime) {
    if (!(instruction instanceof Env)) continue;
    for (const property of instruction.getProperties()) {
      const value = property.getValue();
      if (value !== null) env[property.getName()] = value;
    }
  }
  const described = `ENTRYPOINT ${words.join(' ')}${Object.keys(env).length > 0 ? ` with ENV ${Object.entries(env).map(([key, value]) => `${key}=${value}`).join(' ')}` : ''}`;
  cached = { nodeArgs: mapped.slice(0, -1), env, script, described };
  return cached;
}
