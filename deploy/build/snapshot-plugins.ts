// esbuild plugins for the snapshot bundle only (dist/snapshot-entry.cjs): what lets the libraries load while a
// startup snapshot is built. See src/snapshot/lazy-builtin.ts for why these four built-ins are deferred.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'esbuild';

type Lazy = 'http' | 'https' | 'http2' | 'tls';

/**
 * What the bundled libraries read from the deferred built-ins while they load, copied from this process's modules:
 * undici's HTTP/2 client destructures protocol constants of node:http2. (undici's client also checks at load that
 * http.maxHeaderSize is a positive integer: see DEFAULTS.)
 */
const AT_BUILD: Readonly<Record<Lazy, readonly string[]>> = {
  http: [],
  https: [],
  http2: ['constants'],
  tls: [],
};

/**
 * Node's defaults, served without loading the module unless the node option that changes them is given: undici
 * reads http.maxHeaderSize at load and whenever it creates a client, which would otherwise load node:http (and
 * compile it, ~10 ms) before the first exchange.
 */
const DEFAULTS: Readonly<Record<Lazy, Readonly<Record<string, { readonly value: number; readonly option: string }>>>> = {
  http: { maxHeaderSize: { value: 16 * 1024, option: '--max-http-header-size' } },
  https: {},
  http2: {},
  tls: {},
};

const require = createRequire(import.meta.url);
const LAZY_BUILTIN = fileURLToPath(new URL('../../src/snapshot/lazy-builtin.ts', import.meta.url));

/** Every import of node:http, node:https, node:http2 and node:tls becomes a lazyBuiltin() stand-in. */
export function lazyBuiltins(): Plugin {
  return {
    name: 'ek-lazy-builtins',
    setup(build) {
      build.onResolve({ filter: /^(node:)?(http|https|http2|tls)$/ }, (args) => {
        // The stand-in's own load() imports the real module.
        if (args.namespace === 'ek-lazy-builtin') return { path: `node:${args.path.replace(/^node:/, '')}`, external: true };
        return { path: args.path.replace(/^node:/, ''), namespace: 'ek-lazy-builtin' };
      });
      build.onLoad({ filter: /.*/, namespace: 'ek-lazy-builtin' }, (args) => {
        const name = args.path as Lazy;
        const real = require(`node:${name}`) as Record<string, unknown>;
        const shape = { keys: Object.getOwnPropertyNames(real), atBuild: Object.fromEntries(AT_BUILD[name].map((key) => [key, real[key]])), defaults: DEFAULTS[name] };
        return {
          contents: [
            `const { lazyBuiltin } = require(${JSON.stringify(LAZY_BUILTIN)});`,
            `module.exports = lazyBuiltin(${JSON.stringify(name)}, () => require(${JSON.stringify(`node:${name}`)}), ${JSON.stringify(shape)});`,
          ].join('\n'),
          loader: 'js',
          resolveDir: process.cwd(),
        };
      });
    },
  };
}

/**
 * Exact edits of library files, each asserted to apply exactly once: a library upgrade that changes the text fails
 * the build here (the versions are pinned in package.json; docs/benchmarks.md lists why each edit exists).
 *  - undici keeps node:http's IncomingMessage class from load, to compare a request body's constructor with it when
 *    it destroys one; a stand-in could never be identical, so the comparison reads the class at run time instead.
 *  - prom-client computes process_start_time_seconds when its module loads, which would be the time the snapshot
 *    was built; it is computed at the first scrape instead (now − uptime: the same value).
 */
const EDITS: readonly { readonly file: RegExp; readonly from: string; readonly to: string }[] = [
  {
    file: /[\\/]node_modules[\\/]undici[\\/]lib[\\/]core[\\/]util\.js$/,
    from: "const { IncomingMessage } = require('node:http')",
    to: "const ekHttp = require('node:http')",
  },
  {
    file: /[\\/]node_modules[\\/]undici[\\/]lib[\\/]core[\\/]util\.js$/,
    from: 'Object.getPrototypeOf(stream).constructor === IncomingMessage',
    to: 'Object.getPrototypeOf(stream).constructor === ekHttp.IncomingMessage',
  },
  {
    file: /[\\/]node_modules[\\/]prom-client[\\/]lib[\\/]metrics[\\/]processStartTime\.js$/,
    from: 'const startInSeconds = Math.round(Date.now() / 1000 - process.uptime());',
    to: 'let startInSeconds;',
  },
  {
    file: /[\\/]node_modules[\\/]prom-client[\\/]lib[\\/]metrics[\\/]processStartTime\.js$/,
    from: 'this.set(labels, startInSeconds);',
    to: 'this.set(labels, (startInSeconds ??= Math.round(Date.now() / 1000 - process.uptime())));',
  },
];

export function libraryEdits(): Plugin {
  return {
    name: 'ek-library-edits',
    setup(build) {
      const applied = new Set<(typeof EDITS)[number]>();
      build.onLoad({ filter: /[\\/]node_modules[\\/].*\.js$/ }, async (args) => {
        const edits = EDITS.filter((edit) => edit.file.test(args.path));
        if (edits.length === 0) return undefined;
        let text = await readFile(args.path, 'utf8');
        for (const edit of edits) {
          const count = text.split(edit.from).length - 1;
          if (count !== 1) throw new Error(`${args.path}: expected "${edit.from}" once, found it ${String(count)} times; review deploy/build/snapshot-plugins.ts for this version`);
          text = text.replace(edit.from, edit.to);
          applied.add(edit);
        }
        return { contents: text, loader: 'js' };
      });
      build.onEnd((result) => {
        const missed = EDITS.filter((edit) => !applied.has(edit));
        if (result.errors.length === 0 && missed.length > 0) {
          return { errors: missed.map((edit) => ({ text: `no bundled file matched ${String(edit.file)} for the edit of "${edit.from}"; review deploy/build/snapshot-plugins.ts` })) };
        }
        return undefined;
      });
    },
  };
}
