import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { systemCode } from '../core/errors.ts';

/**
 * Whether `dist/bin.js` restarts itself from the startup snapshot (dist/snapshot.blob, see entry.ts).
 *
 * A snapshot saves a daemon start most of its work (the libraries are already loaded), but only a process started
 * with `node --snapshot-blob` can use one, and only on the very Node.js binary that built it: any other binary
 * refuses the blob and exits. So the launcher checks the stamp the build wrote beside the blob and, when it matches
 * this binary, replaces itself with `node --snapshot-blob dist/snapshot.blob dist/bin.js …` (one execve: same pid,
 * same stdio, one Node.js start more). When it does not match or the blob is missing, the caller starts from the
 * plain bundle and says why in one line: a snapshot never decides whether the sidecar starts.
 *
 * Only `run` and `once` are worth the second start; `check` (an exec probe), --help and --version are not. The image
 * needs no launcher: its ENTRYPOINT passes --snapshot-blob itself, with a blob built in the image by its own node.
 */

/** What the build records beside the blob (written by entry.ts while it builds): the binary that built it. */
export interface SnapshotStamp {
  readonly node: string;
  readonly arch: string;
  readonly platform: string;
  /** Size and modification time of that binary: two builds of one version are different binaries. */
  readonly binary: { readonly size: number; readonly mtimeMs: number };
}

/** Set to `off` to start from the plain bundle without trying the snapshot (the black-box tests run both ways). */
export const SNAPSHOT_SWITCH = 'EK_SIDECAR_SNAPSHOT';

const NO_SNAPSHOT = new Set(['check', '--help', '-h', '--version']);

/** `run` (the default) and `once`; a conservative scan: any `check`-like word makes it plain, which is always correct. */
export function wantsSnapshot(args: readonly string[]): boolean {
  return !args.some((arg) => NO_SNAPSHOT.has(arg));
}

/** The stamp of this process's own Node.js binary. */
export function currentStamp(): SnapshotStamp {
  const binary = statSync(process.execPath);
  return { node: process.version, arch: process.arch, platform: process.platform, binary: { size: binary.size, mtimeMs: binary.mtimeMs } };
}

/** Why a blob with `stamp` cannot be used by a process whose own stamp is `self`; undefined when it can. */
export function refusal(stamp: unknown, self: SnapshotStamp): string | undefined {
  if (!isStamp(stamp)) return 'its stamp is unreadable';
  if (stamp.node !== self.node || stamp.arch !== self.arch || stamp.platform !== self.platform) {
    return `it was built by Node.js ${stamp.node} (${stamp.platform}-${stamp.arch}), this is ${self.node} (${self.platform}-${self.arch})`;
  }
  if (stamp.binary.size !== self.binary.size || stamp.binary.mtimeMs !== self.binary.mtimeMs) return 'it was built by another Node.js binary of the same version';
  return undefined;
}

function isStamp(value: unknown): value is SnapshotStamp {
  if (typeof value !== 'object' || value === null) return false;
  const stamp = value as Record<string, unknown>;
  const binary = stamp.binary as Record<string, unknown> | null | undefined;
  return typeof stamp.node === 'string' && typeof stamp.arch === 'string' && typeof stamp.platform === 'string'
    && typeof binary === 'object' && binary !== null && typeof binary.size === 'number' && typeof binary.mtimeMs === 'number';
}

/** The blob and its stamp beside the launcher (`bin`, its import.meta.url). */
export function snapshotFiles(bin: string): { blob: string; stamp: string } {
  return { blob: fileURLToPath(new URL('snapshot.blob', bin)), stamp: fileURLToPath(new URL('snapshot.json', bin)) };
}

/**
 * Restart from the snapshot when `args` want it and this binary built it: does not return then. Otherwise returns
 * the line to log (why the plain bundle starts instead), or undefined when no snapshot was wanted.
 */
export function startFromSnapshot(bin: string, args: readonly string[], env: NodeJS.ProcessEnv): string | undefined {
  if (env[SNAPSHOT_SWITCH] === 'off' || !wantsSnapshot(args)) return undefined;
  const files = snapshotFiles(bin);
  let why: string | undefined;
  try {
    statSync(files.blob);
    why = refusal(JSON.parse(readFileSync(files.stamp, 'utf8')), currentStamp());
  } catch (error) {
    why = describe(error);
  }
  if (why === undefined) {
    try {
      // Node's own options (e.g. --max-semi-space-size) carry over; the script stays argv[1], as in any start.
      process.execve?.(process.execPath, [process.execPath, ...process.execArgv, '--snapshot-blob', files.blob, fileURLToPath(bin), ...args], env);
      why = 'this Node.js cannot re-execute itself (process.execve)';
    } catch (error) {
      why = `re-executing failed: ${describe(error)}`;
    }
  }
  return `startup snapshot not used (${why}); starting from the plain bundle`;
}

function describe(error: unknown): string {
  if (systemCode(error) === 'ENOENT' && error instanceof Error && 'path' in error && typeof error.path === 'string') return `${error.path} is missing`;
  return error instanceof Error ? error.message : String(error);
}
