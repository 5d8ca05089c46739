// The Dockerfile: parsed with dockerfile-ast and checked for pinned bases (and an honest word on how their digests
// are verified and kept current), a numeric non-root user, the CLI entry point started from the startup snapshot, a
// build stage that downloads no second Node.js and builds no snapshot, the snapshot built in the runtime stage by its
// own node, and the SBOM and licenses beside the bundle; then its stages are reproduced in temporary directories (no
// Docker engine here, the image's node played by this test's) and the assembled runtime tree must answer through its
// ENTRYPOINT on Node 24, from the snapshot.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix, relative } from 'node:path';
import { Arg, Cmd, Copy, DockerfileParser, Entrypoint, From, Label, Run, type Instruction } from 'dockerfile-ast';
import { DIST, ROOT, SNAPSHOT } from '../../deploy/build/build.ts';
import { missingTool, projectPath, projectRoot, readPackageJson, readProjectFile, run } from './helpers.ts';

interface Stage {
  readonly name: string | undefined;
  readonly from: From;
  readonly instructions: readonly Instruction[];
}

function parseStages(text: string): Stage[] {
  const stages: { name: string | undefined; from: From; instructions: Instruction[] }[] = [];
  for (const instruction of DockerfileParser.parse(text).getInstructions()) {
    if (instruction instanceof From) stages.push({ name: instruction.getBuildStage() ?? undefined, from: instruction, instructions: [] });
    else stages.at(-1)?.instructions.push(instruction);
  }
  return stages;
}

const stages = parseStages(readProjectFile('Dockerfile'));
const finalStage = stages.at(-1);
const packageJson = readPackageJson();

function keyword(stage: Stage, name: string): Instruction[] {
  return stage.instructions.filter((instruction) => instruction.getKeyword() === name);
}

function jsonForm(instruction: Instruction | undefined): string[] {
  assert.ok(instruction instanceof Entrypoint || instruction instanceof Cmd, 'expected ENTRYPOINT or CMD');
  const values = instruction.getJSONStrings().map((value) => value.getJSONValue());
  assert.ok(values.length > 0, `${instruction.getKeyword()} must use the JSON (exec) form`);
  return values;
}

function copies(stage: Stage): { from: string | undefined; sources: string[]; dest: string }[] {
  return stage.instructions
    .filter((instruction): instruction is Copy => instruction instanceof Copy)
    .map((copy) => {
      const args = copy.getArguments().map((argument) => argument.getValue());
      const dest = args.pop();
      assert.ok(dest !== undefined);
      return { from: copy.getFromFlag()?.getValue() ?? undefined, sources: args, dest };
    });
}

function runCommands(stage: Stage): string[] {
  return keyword(stage, 'RUN').map((instruction) => instruction.getArgumentsContent() ?? '');
}

/** The RUNs in exec (JSON) form, as argv; the others are shell commands. */
function execRuns(stage: Stage): string[][] {
  return keyword(stage, 'RUN')
    .filter((instruction): instruction is Run => instruction instanceof Run && instruction.getJSONStrings().length > 0)
    .map((instruction) => instruction.getJSONStrings().map((word) => word.getJSONValue()));
}

/** The image's node and where its paths are in this checkout: dist/ as /app/dist/. */
const IMAGE_NODE = '/nodejs/bin/node';
const inImage = (path: string): string => posix.join('/app', relative(ROOT, path));

function stageNamed(name: string | undefined): Stage {
  const stage = stages.find((candidate) => candidate.name === name);
  assert.ok(stage !== undefined, `no stage named ${String(name)}`);
  return stage;
}

function entrypoint(): string[] {
  assert.ok(finalStage !== undefined);
  const entrypoints = keyword(finalStage, 'ENTRYPOINT');
  assert.equal(entrypoints.length, 1);
  return jsonForm(entrypoints[0]);
}

void describe('Dockerfile', () => {
  void test('has a build stage, a production-dependencies stage and a runtime stage', () => {
    assert.ok(stages.length >= 2);
    assert.ok(finalStage !== undefined);
  });

  void test('every FROM is pinned by tag and sha256 digest, and no tag is latest', () => {
    const stageNames = new Set<string>();
    for (const stage of stages) {
      const image = stage.from.getImage() ?? '';
      if (!stageNames.has(image)) {
        assert.ok(stage.from.getImageTag(), `${image} has no tag`);
        assert.notEqual(stage.from.getImageTag(), 'latest', `${image} uses latest`);
        assert.match(stage.from.getImageDigest() ?? '', /^sha256:[a-f0-9]{64}$/, `${image} is not pinned by digest`);
      }
      if (stage.name !== undefined) stageNames.add(stage.name);
    }
  });

  void test('the runtime base is a Node 24 image', () => {
    assert.match(finalStage?.from.getImageName() ?? '', /nodejs24|node/);
    assert.match(`${finalStage?.from.getImageName() ?? ''}:${finalStage?.from.getImageTag() ?? ''}`, /24/);
  });

  void test('the runtime stage runs as a numeric non-root user', () => {
    assert.ok(finalStage !== undefined);
    const user = keyword(finalStage, 'USER').at(-1)?.getArgumentsContent();
    assert.ok(user !== undefined && user !== null, 'no USER in the runtime stage');
    const match = /^(\d+)(?::(\d+))?$/.exec(user.trim());
    assert.ok(match?.[1] !== undefined, `USER ${user} is not numeric (Kubernetes cannot verify runAsNonRoot)`);
    assert.notEqual(Number(match[1]), 0);
    assert.equal(Number(match[1]), 65532);
  });

  void test('ENTRYPOINT runs the CLI on the image Node from the startup snapshot, CMD defaults to run, EXPOSE 9732', () => {
    assert.ok(finalStage !== undefined);
    const words = entrypoint();
    assert.equal(words[0], IMAGE_NODE);
    assert.equal(words.at(-1), '/app/dist/bin.js');
    const blob = words.indexOf('--snapshot-blob');
    assert.ok(blob > 0, 'the ENTRYPOINT starts from the snapshot');
    assert.equal(words[blob + 1], inImage(SNAPSHOT.blob));
    assert.deepEqual(jsonForm(keyword(finalStage, 'CMD')[0]), ['run']);
    assert.deepEqual(keyword(finalStage, 'EXPOSE').map((expose) => expose.getArgumentsContent()), ['9732']);
  });

  void test('the ENTRYPOINT script is the file the build emits for src/bin.ts, and the one package.json `bin` names', () => {
    const scripts = (JSON.parse(readProjectFile('package.json')) as { scripts: Record<string, string> }).scripts;
    assert.match(scripts.build ?? '', /^node deploy\/build\/build\.ts\b/, 'npm run build runs deploy/build/build.ts');
    assert.match(readProjectFile('deploy', 'build', 'build.ts'), /entryPoints: \{ bin: 'src\/bin\.ts' \}/, 'which bundles src/bin.ts as bin');
    const emitted = relative(ROOT, join(DIST, 'bin.js'));
    assert.equal(entrypoint().at(-1), posix.join('/app', emitted));
    const bin = packageJson.bin['ek-sidecar'];
    assert.equal(posix.normalize(bin ?? ''), emitted, 'package.json bin must point at the file the build emits');
  });

  void test('the digests are said to be unverified here, with the procedure that verifies them and Renovate to keep them current', () => {
    const text = readProjectFile('Dockerfile');
    assert.match(text, /NOT RESOLVED FROM THE MACHINE THIS FILE WAS\s+# WRITTEN ON/);
    assert.match(text, /deploy\/image\/check-base-digests\.sh/);
    assert.ok(existsSync(projectPath('deploy', 'image', 'check-base-digests.sh')));
    const renovate = JSON.parse(readProjectFile('renovate.json')) as { extends?: string[] };
    assert.ok(renovate.extends?.includes('docker:pinDigests'), 'renovate.json pins and updates the digests');
  });

  void test('the runtime stage holds dist/ and package.json, and builds the snapshot there with its own node in exec form (distroless has no shell)', () => {
    assert.ok(finalStage !== undefined);
    const snapshotBuild = ['--snapshot-blob', relative(ROOT, SNAPSHOT.blob), '--build-snapshot-config', relative(ROOT, SNAPSHOT.config)];
    assert.deepEqual(execRuns(finalStage), [[IMAGE_NODE, ...snapshotBuild]]);
    assert.equal(runCommands(finalStage).length, 1, 'no other RUN');
    const fromStages = copies(finalStage).filter((copy) => copy.from !== undefined).flatMap((copy) => copy.sources);
    assert.deepEqual(fromStages, ['/src/dist/'], 'no node_modules, no dev dependency');
    const fromContext = copies(finalStage).filter((copy) => copy.from === undefined).flatMap((copy) => copy.sources);
    assert.deepEqual(fromContext, ['package.json'], 'the runtime stage takes only package.json from the build context');
  });

  void test('the build stage downloads no second Node.js: npm ci without scripts, then esbuild\'s own postinstall, then the build', () => {
    const dist = finalStage === undefined ? undefined : copies(finalStage).find((copy) => copy.sources.some((source) => source.includes('/dist')));
    assert.ok(dist?.from !== undefined);
    const stage = stageNamed(dist.from);
    assert.match(`${stage.from.getImageName() ?? ''}:${stage.from.getImageTag() ?? ''}`, /^node:24/, 'the build runs on the base image\'s Node 24');
    const commands = runCommands(stage);
    // node@24's preinstall is what would fetch a second Node; --ignore-scripts skips it, and `npm rebuild esbuild` runs
    // the one script the build needs. Measured here: `npm ci --ignore-scripts` installs no node/bin/node and no
    // .bin/node, and the build then runs on whatever `node` is first on PATH.
    assert.ok(commands.some((command) => /\bnpm ci\b.*--ignore-scripts/.test(command) && /npm rebuild esbuild/.test(command)));
    // The bundles only: a snapshot built by this stage's node would not run on the runtime stage's.
    assert.ok(commands.includes('npm run build:bundle'));
    const scripts = (JSON.parse(readProjectFile('package.json')) as { scripts: Record<string, string> }).scripts;
    assert.match(scripts['build:bundle'] ?? '', /--no-snapshot/);
  });

  void test('OCI labels describe the image; the version defaults to package.json', () => {
    assert.ok(finalStage !== undefined);
    const labels = new Map(
      finalStage.instructions
        .filter((instruction): instruction is Label => instruction instanceof Label)
        .flatMap((label) => label.getProperties().map((property) => [property.getName(), property.getValue() ?? ''] as const)),
    );
    for (const key of ['title', 'description', 'version', 'revision', 'licenses']) {
      assert.ok(labels.get(`org.opencontainers.image.${key}`), `missing org.opencontainers.image.${key}`);
    }
    assert.equal(labels.get('org.opencontainers.image.title'), 'ek-sidecar');
    assert.equal(labels.get('org.opencontainers.image.licenses'), (JSON.parse(readProjectFile('package.json')) as { license: string }).license);
    const versionArg = finalStage.instructions
      .filter((instruction): instruction is Arg => instruction instanceof Arg)
      .map((arg) => arg.getProperty())
      .find((property) => property?.getName() === 'VERSION');
    assert.equal(versionArg?.getValue(), packageJson.version);
  });

  void test('.dockerignore lets in what the stages copy and keeps node_modules, dist and .git out', () => {
    const patterns = readProjectFile('.dockerignore')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    const matches = (pattern: string, path: string): boolean => {
      const glob = pattern.replace(/\/$/, '');
      const escape = (text: string): string => text.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
      const body = glob
        .split('**')
        .map((part) => part.split('*').map(escape).join('[^/]*'))
        .join('.*');
      const regex = new RegExp(`^${body}(/.*)?$`);
      return regex.test(path);
    };
    // As Docker reads it: the last pattern that matches decides, and a leading ! lets the path back in.
    const included = (path: string): boolean => {
      let keep = true;
      for (const pattern of patterns) {
        const negated = pattern.startsWith('!');
        if (matches(negated ? pattern.slice(1) : pattern, path)) keep = negated;
      }
      return keep;
    };
    for (const stage of stages) {
      for (const copy of copies(stage).filter((candidate) => candidate.from === undefined)) {
        for (const source of copy.sources) assert.ok(included(source), `${source} is copied but excluded by .dockerignore`);
      }
    }
    for (const path of ['node_modules', 'dist', '.git', 'test', 'testkit', 'bench', 'helm', '.env', 'deploy/kubernetes']) {
      assert.equal(included(path), false, `${path} should not be in the build context`);
    }
  });

  void test(
    'the stages, reproduced here, give a runtime tree whose CLI prints the package version on Node 24',
    { timeout: 300_000, skip: missingTool('npm') },
    (t) => {
      const root = mkdtempSync(join(tmpdir(), 'ek-sidecar-image-'));
      t.after(() => {
        rmSync(root, { recursive: true, force: true });
      });
      const stageRoots = new Map<string, string>();
      const env = {
        ...process.env,
        // The image's Node is Node 24: put this test's Node first, as the base image does.
        PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
        npm_config_prefer_offline: 'true',
        npm_config_update_notifier: 'false',
      };
      let finalRoot = '';
      let finalEnv: Record<string, string> = {};

      stages.forEach((stage, index) => {
        const stageRoot = join(root, `stage-${String(index)}`);
        mkdirSync(stageRoot);
        if (stage.name !== undefined) stageRoots.set(stage.name, stageRoot);
        let cwd = stageRoot;
        finalRoot = stageRoot;
        finalEnv = {};
        for (const instruction of stage.instructions) {
          const args = instruction.getArgumentsContent() ?? '';
          switch (instruction.getKeyword()) {
            case 'WORKDIR':
              cwd = join(stageRoot, args);
              mkdirSync(cwd, { recursive: true });
              break;
            case 'ENV':
              for (const [key, value] of args.split(/\s+/).map((pair) => pair.split('='))) if (key && value !== undefined) finalEnv[key] = value;
              break;
            case 'COPY': {
              assert.ok(instruction instanceof Copy);
              const [copy] = copies({ ...stage, instructions: [instruction] });
              assert.ok(copy !== undefined);
              const sourceRoot = copy.from === undefined ? projectRoot : stageRoots.get(copy.from);
              assert.ok(sourceRoot !== undefined, `COPY --from=${String(copy.from)}: no such stage`);
              const target = copy.dest.startsWith('/') ? join(stageRoot, copy.dest) : join(cwd, copy.dest);
              for (const source of copy.sources) {
                const from = join(sourceRoot, source);
                assert.ok(existsSync(from), `COPY source ${source} does not exist`);
                const into = statSync(from).isDirectory() || !(copy.dest.endsWith('/') || copy.sources.length > 1) ? target : join(target, basename(source));
                cpSync(from, into, { recursive: true });
              }
              break;
            }
            case 'RUN': {
              const argv = instruction instanceof Run ? instruction.getJSONStrings().map((word) => word.getJSONValue()) : [];
              if (argv.length > 0) {
                // Exec form, on the image's node: this test's node plays it.
                const [program = '', ...rest] = argv;
                const result = run(program === IMAGE_NODE ? process.execPath : program, rest, { cwd, env, timeoutMs: 120_000 });
                assert.equal(result.status, 0, `RUN ${argv.join(' ')} failed:\n${result.stdout}\n${result.stderr}`);
                break;
              }
              if (/^npm ci\b/.test(args) && !args.includes('--omit=dev')) {
                // The full development install from the same lockfile is the project's own node_modules: reuse it
                // rather than download node@24's binary again.
                symlinkSync(projectPath('node_modules'), join(cwd, 'node_modules'), 'dir');
                break;
              }
              const result = run('/bin/sh', ['-c', args], { cwd, env, timeoutMs: 240_000 });
              assert.equal(result.status, 0, `RUN ${args} failed:\n${result.stdout}\n${result.stderr}`);
              break;
            }
            default:
              break;
          }
        }
      });

      assert.deepEqual(readdirSync(join(finalRoot, 'app')).sort(), ['dist', 'package.json'], 'the runtime tree is dist/ and package.json');
      const dist = readdirSync(join(finalRoot, 'app', 'dist'));
      for (const file of ['bin.js', 'snapshot.blob', 'snapshot.json', 'sbom.cdx.json', 'THIRD_PARTY_LICENSES']) assert.ok(dist.includes(file), `dist/${file} is in the image`);
      assert.ok(dist.every((file) => !file.endsWith('.ts') && file !== 'node_modules'), dist.join(', '));

      // The ENTRYPOINT as the image runs it, /app being the runtime tree's: from the snapshot, with nothing said.
      const [nodeBinary, ...words] = entrypoint().map((word) => (word.startsWith('/app/') ? join(finalRoot, word) : word));
      assert.equal(nodeBinary, IMAGE_NODE);
      const cli = words.at(-1) ?? '';
      assert.ok(existsSync(cli), `${cli} is not in the runtime tree (is src/bin.ts written yet?)`);
      const start = (args: readonly string[], entry: readonly string[] = words): ReturnType<typeof run> => run(process.execPath, [...entry, ...args], {
        cwd: join(finalRoot, 'app'),
        env: { PATH: process.env.PATH ?? '', ...finalEnv, NODE_DEBUG_NATIVE: 'mksnapshot' },
        timeoutMs: 30_000,
      });
      const version = start(['--version']);
      assert.equal(version.status, 0, version.stderr.slice(-2_000));
      assert.equal(version.stdout.trim(), packageJson.version);
      assert.ok(version.stderr.includes('snapshot_deserialize_main'), 'started from the snapshot');
      // `once` reaches every runtime module (undici, chokidar, prom-client, pino) without
      // node_modules, then fails cleanly on the missing token file; started as `node /app/dist/bin.js`, the launcher
      // finds the image's snapshot made by this node and restarts from it.
      const onceArgs = ['once', '--token-file', join(finalRoot, 'no-token'), '--jwt-file', join(finalRoot, 'jwt'), '--api-url', 'http://127.0.0.1:9'];
      for (const entry of [words, [cli]]) {
        const once = start(onceArgs, entry);
        assert.equal(once.status, 1, once.stderr.slice(-2_000));
        assert.match(once.stdout, /no-token does not exist/);
        assert.ok(once.stderr.includes('snapshot_deserialize_main'), `${entry.join(' ')}: started from the snapshot`);
        assert.doesNotMatch(once.stderr, /startup snapshot not used/);
      }
    },
  );
});
