import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { refusal, SNAPSHOT_SWITCH, startFromSnapshot, wantsSnapshot, type SnapshotStamp } from '../../src/snapshot/launcher.ts';

const SELF: SnapshotStamp = { node: 'v24.21.0', arch: 'x64', platform: 'linux', binary: { size: 126_595_440, mtimeMs: 1_795_951_943_182.996 } };

void describe('wantsSnapshot: which commands restart from the snapshot', () => {
  const table: readonly [readonly string[], boolean][] = [
    [[], true],
    [['run'], true],
    [['run', '--jwt-file', '/x'], true],
    [['--log-level', 'debug', 'run'], true],
    [['once', '--api-url', 'https://x'], true],
    [['check'], false],
    [['check', '--jwt-file', '/x'], false],
    [['--help'], false],
    [['-h'], false],
    [['run', '--help'], false],
    [['--version'], false],
    // A value that reads like a command only costs that start the snapshot; it still starts, from the plain bundle.
    [['run', '--workspace', 'check'], false],
  ];
  for (const [args, expected] of table) {
    void it(`${JSON.stringify(args)} → ${String(expected)}`, () => {
      assert.equal(wantsSnapshot(args), expected);
    });
  }
});

void describe('refusal: whether a blob with this stamp runs on this binary', () => {
  void it('the very binary that built it: no refusal', () => {
    assert.equal(refusal({ ...SELF, binary: { ...SELF.binary } }, SELF), undefined);
  });

  const table: readonly [string, unknown, RegExp][] = [
    ['another version', { ...SELF, node: 'v24.20.0' }, /^it was built by Node\.js v24\.20\.0 \(linux-x64\), this is v24\.21\.0 \(linux-x64\)$/],
    ['another architecture', { ...SELF, arch: 'arm64' }, /\(linux-arm64\), this is v24\.21\.0 \(linux-x64\)$/],
    ['another platform', { ...SELF, platform: 'darwin' }, /\(darwin-x64\)/],
    ['another binary of the version (size)', { ...SELF, binary: { ...SELF.binary, size: 1 } }, /^it was built by another Node\.js binary of the same version$/],
    ['another binary of the version (mtime)', { ...SELF, binary: { ...SELF.binary, mtimeMs: 1 } }, /another Node\.js binary/],
    ['not an object', 'v24.21.0', /^its stamp is unreadable$/],
    ['null', null, /unreadable/],
    ['no binary', { node: SELF.node, arch: SELF.arch, platform: SELF.platform }, /unreadable/],
    ['a binary without numbers', { ...SELF, binary: { size: '1', mtimeMs: 1 } }, /unreadable/],
  ];
  for (const [name, stamp, why] of table) {
    void it(name, () => {
      assert.match(refusal(stamp, SELF) ?? '', why);
    });
  }
});

void describe('startFromSnapshot, where it returns', () => {
  void it('says nothing when no snapshot is wanted: check, --help, --version, or the switch set to off', () => {
    const bin = pathToFileURL(join(tmpdir(), 'nowhere', 'bin.js')).href;
    assert.equal(startFromSnapshot(bin, ['check'], {}), undefined);
    assert.equal(startFromSnapshot(bin, ['--version'], {}), undefined);
    assert.equal(startFromSnapshot(bin, ['run'], { [SNAPSHOT_SWITCH]: 'off' }), undefined);
  });

  void it('names the missing blob, in one line, when it is wanted', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ek-launcher-'));
    try {
      const line = startFromSnapshot(pathToFileURL(join(dir, 'bin.js')).href, ['run'], {});
      assert.equal(line, `startup snapshot not used (${join(dir, 'snapshot.blob')} is missing); starting from the plain bundle`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
