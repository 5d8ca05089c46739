// A client that is not on loopback: a network namespace joined to this one by a veth pair, made by the test and
// removed after it. Addresses come from TEST-NET-1 (192.0.2.0/24, RFC 5737: never routed), one /30 per process,
// so the only traffic is between this machine's two ends of the pair. Needs root (CAP_NET_ADMIN) and iproute2.
import { execFile, spawn } from 'node:child_process';
import { mkdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);
const IP = '/usr/sbin/ip';

export interface Netns {
  readonly name: string;
  /** This namespace's end of the pair: where a server here is reached from inside. */
  readonly hostAddress: string;
  /** The other end: the source address of whatever runs inside. */
  readonly innerAddress: string;
  /**
   * Names that resolve inside the namespace (a Service name): `ip netns exec` mounts /etc/netns/<name>/hosts over
   * /etc/hosts for what it runs.
   */
  setHosts(entries: Readonly<Record<string, string>>): Promise<void>;
  /** Run `argv` inside the namespace to completion. */
  exec(argv: readonly string[], timeoutMs?: number): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** Start `argv` inside the namespace, without waiting (a daemon); returns its kill switch. */
  spawn(argv: readonly string[]): { kill(): void; exited: Promise<number | null>; stdout(): string };
  remove(): Promise<void>;
}

/** A namespace and veth pair, or why it cannot be made here (not root, no iproute2, no permission). */
export async function createNetns(): Promise<Netns | { readonly skip: string }> {
  if (process.getuid?.() !== 0) return { skip: 'network namespaces need root' };
  const id = process.pid % 60;
  const name = `ekt-${String(process.pid)}`;
  const hostIf = `ekt${String(process.pid)}h`;
  const innerIf = `ekt${String(process.pid)}n`;
  const base = 4 * id;
  const hostAddress = `192.0.2.${String(base + 1)}`;
  const innerAddress = `192.0.2.${String(base + 2)}`;
  const steps: string[][] = [
    ['netns', 'add', name],
    ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', innerIf],
    ['link', 'set', innerIf, 'netns', name],
    ['addr', 'add', `${hostAddress}/30`, 'dev', hostIf],
    ['link', 'set', hostIf, 'up'],
    ['-n', name, 'addr', 'add', `${innerAddress}/30`, 'dev', innerIf],
    ['-n', name, 'link', 'set', innerIf, 'up'],
    ['-n', name, 'link', 'set', 'lo', 'up'],
  ];
  const etc = `/etc/netns/${name}`;
  const remove = async (): Promise<void> => {
    await run(IP, ['link', 'del', hostIf]).catch(() => undefined);
    await run(IP, ['netns', 'del', name]).catch(() => undefined);
    await rm(etc, { recursive: true, force: true });
    await rmdir('/etc/netns').catch(() => undefined); // only when empty: another namespace's files stay
  };
  try {
    for (const step of steps) await run(IP, step);
  } catch (error) {
    await remove();
    return { skip: `cannot make a network namespace here: ${error instanceof Error ? error.message.split('\n')[0] ?? '' : String(error)}` };
  }
  return {
    name,
    hostAddress,
    innerAddress,
    async setHosts(entries) {
      await mkdir(etc, { recursive: true });
      const lines = ['127.0.0.1 localhost', ...Object.entries(entries).map(([host, address]) => `${address} ${host}`)];
      await writeFile(`${etc}/hosts`, `${lines.join('\n')}\n`);
    },
    async exec(argv, timeoutMs = 10_000) {
      try {
        const { stdout, stderr } = await run(IP, ['netns', 'exec', name, ...argv], { timeout: timeoutMs });
        return { code: 0, stdout, stderr };
      } catch (error) {
        const failed = error as { code?: number; stdout?: string; stderr?: string };
        return { code: typeof failed.code === 'number' ? failed.code : null, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
      }
    },
    spawn(argv) {
      const child = spawn(IP, ['netns', 'exec', name, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => { out += chunk; });
      child.stderr.resume();
      const exited = new Promise<number | null>((resolve) => { child.once('exit', (code) => { resolve(code); }); });
      return { kill: () => { child.kill('SIGTERM'); }, exited, stdout: () => out };
    },
    remove,
  };
}
