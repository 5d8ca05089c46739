// deploy/build/slim/: what the bundles get for `undici` and `prom-client`. They reach into the packages' own files,
// which is only safe for the exact versions they were written against: these tests fail on a version bump until
// someone has checked the slim modules (and the snapshot's library edits, deploy/build/snapshot-plugins.ts) again.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as promClient from 'prom-client';
import * as undici from 'undici';
import * as slimPromClient from '../../deploy/build/slim/prom-client.ts';
import * as slimUndici from '../../deploy/build/slim/undici.ts';
import { PROJECT_ROOT } from '../../testkit/paths.ts';

const require = createRequire(import.meta.url);
const manifest = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };

/** The packages whose private files the build relies on, and the version it was checked against. */
const PINNED = { undici: '8.13.1', 'prom-client': '15.1.3' } as const;

void describe('the packages the build reaches into are pinned', () => {
  for (const [name, version] of Object.entries(PINNED)) {
    void it(`${name} is pinned to ${version} in package.json and installed at it`, () => {
      assert.equal(manifest.dependencies[name], version, `package.json must pin ${name} exactly (no ^ or ~): deploy/build/slim/ and snapshot-plugins.ts rely on its files`);
      assert.equal((require(`${name}/package.json`) as { version: string }).version, version);
    });
  }
});

/** The names src/ imports as values from `pkg` (type-only imports are erased). */
function valuesImported(pkg: string): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) {
        const pattern = new RegExp(`import\\s+(type\\s+)?\\{([^}]*)\\}\\s+from\\s+'${pkg}'`, 'g');
        for (const match of readFileSync(path, 'utf8').matchAll(pattern)) {
          if (match[1] !== undefined) continue;
          for (const part of (match[2] ?? '').split(',').map((text) => text.trim()).filter((text) => text !== '' && !text.startsWith('type '))) {
            names.add(part.split(/\s+as\s+/)[0] ?? part);
          }
        }
      }
    }
  };
  walk(join(PROJECT_ROOT, 'src'));
  return names;
}

void describe('slim/undici.ts', () => {
  void it('exports every value src/ imports from undici, as the very same objects', () => {
    for (const name of valuesImported('undici')) {
      assert.ok(name in slimUndici, `src/ imports ${name} from undici: add it to deploy/build/slim/undici.ts`);
    }
    assert.equal(slimUndici.EnvHttpProxyAgent, undici.EnvHttpProxyAgent);
    assert.equal(slimUndici.Agent, undici.Agent);
    assert.equal(slimUndici.Dispatcher, undici.Dispatcher);
  });

  /** A dispatcher that records what request() asks it to dispatch, and never answers. */
  function recorder(): { dispatcher: undici.Dispatcher; seen: () => Record<string, unknown> | undefined } {
    let seen: Record<string, unknown> | undefined;
    const dispatcher = new (class extends undici.Dispatcher {
      override dispatch(options: undici.Dispatcher.DispatchOptions): boolean {
        seen = { ...options };
        return true;
      }
    })();
    return { dispatcher, seen: () => seen };
  }

  type Call = readonly [string | URL | Record<string, unknown>, Record<string, unknown> | undefined];
  const calls: readonly (readonly [string, Call])[] = [
    ['a URL string and a method', ['https://api.example/v1/auth/exchange?x=1', { method: 'POST', headers: { a: 'b' }, body: 'x' }]],
    ['a URL object', [new URL('http://127.0.0.1:9/p'), { method: 'GET' }]],
    ['a path in the options', ['https://api.example', { path: 'v1/x?y=2', method: 'PUT' }]],
    ['a body and no method', ['https://api.example/', { body: 'x' }]],
    ['the options as the first argument', [{ origin: 'https://api.example', path: '/a' }, undefined]],
  ];
  for (const [name, [url, options]] of calls) {
    void it(`request() dispatches as undici's own does: ${name}`, async () => {
      const ours = recorder();
      const theirs = recorder();
      const call = (fn: typeof undici.request, dispatcher: undici.Dispatcher): void => {
        const promise = options === undefined
          ? fn({ ...(url as Record<string, unknown>), dispatcher } as unknown as string)
          : fn(url as string, { ...options, dispatcher });
        promise.catch(() => undefined);
      };
      call(slimUndici.request as unknown as typeof undici.request, ours.dispatcher);
      call(undici.request, theirs.dispatcher);
      await new Promise((resolve) => setImmediate(resolve));
      // Each call has its own dispatcher; the rest must match.
      const strip = (seen: Record<string, unknown> | undefined): Record<string, unknown> => Object.fromEntries(Object.entries(seen ?? {}).filter(([key]) => key !== 'dispatcher'));
      assert.ok(theirs.seen() !== undefined);
      assert.deepEqual(strip(ours.seen()), strip(theirs.seen()));
    });
  }

  const refused: readonly (readonly [string, unknown, unknown])[] = [
    ['no URL', '', {}],
    ['options that are not an object', 'https://api.example/', 'POST'],
    ['a path that is not a string', 'https://api.example/', { path: 1 }],
    ['an agent', 'https://api.example/', { agent: {} }],
  ];
  for (const [name, url, options] of refused) {
    void it(`request() refuses ${name} as undici's own does`, () => {
      const message = (fn: (...args: unknown[]) => unknown): string => {
        try {
          fn(url, options);
        } catch (error) {
          return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        }
        return 'no error';
      };
      assert.equal(message(slimUndici.request as (...args: unknown[]) => unknown), message(undici.request as (...args: unknown[]) => unknown));
    });
  }
});

void describe('slim/prom-client.ts', () => {
  void it('exports every value src/ imports from prom-client, as the very same objects', () => {
    for (const name of valuesImported('prom-client')) {
      assert.ok(name in slimPromClient, `src/ imports ${name} from prom-client: add it to deploy/build/slim/prom-client.ts`);
      assert.equal((slimPromClient as Record<string, unknown>)[name], (promClient as Record<string, unknown>)[name]);
    }
  });
});
