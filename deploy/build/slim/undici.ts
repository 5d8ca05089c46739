// What the bundles get for `import … from 'undici'` (deploy/build/build.ts aliases it): the parts src/ uses, loaded
// from undici's own files, instead of its index, which also loads fetch, WebSocket, EventSource, the cache, the
// mocks and the SQLite cache store (+38 ms and +18.7 MiB at start in a bundle, measured before this file existed).
// src/ imports request, Dispatcher, Agent and EnvHttpProxyAgent (the API proxy uses Dispatcher#stream); a name missing here fails the build (esbuild checks every
// named import). undici is pinned to an exact version in package.json, and test/packaging/slim-imports.test.ts fails
// when makeDispatcher below no longer matches the one in undici's index.js.
import api from 'undici/lib/api/index.js';
import { InvalidArgumentError } from 'undici/lib/core/errors.js';
import { parseOrigin, parseURL } from 'undici/lib/core/util.js';
import Agent from 'undici/lib/dispatcher/agent.js';
import Dispatcher from 'undici/lib/dispatcher/dispatcher.js';
import EnvHttpProxyAgent from 'undici/lib/dispatcher/env-http-proxy-agent.js';
import { getGlobalDispatcher } from 'undici/lib/global.js';

// As undici's index.js does: every dispatcher gets request(), stream(), pipeline(), upgrade() and connect().
Object.assign(Dispatcher.prototype, api);

type Handler = (...args: unknown[]) => unknown;
interface Options {
  readonly path?: unknown;
  readonly method?: string;
  readonly body?: unknown;
  readonly agent?: unknown;
  readonly dispatcher?: unknown;
  readonly [key: string]: unknown;
}

/** undici's index.js makeDispatcher(), as published in the pinned version (MIT), with types. */
function makeDispatcher(fn: Handler) {
  return (url: string | URL | Options, opts?: Options | Handler | null, handler?: Handler): unknown => {
    if (typeof opts === 'function') {
      handler = opts;
      opts = null;
    }

    // (undici also accepts `url instanceof URL` here, which typeof 'object' already covers.)
    if (!url || (typeof url !== 'string' && typeof url !== 'object')) {
      throw new InvalidArgumentError('invalid url');
    }

    if (opts != null && typeof opts !== 'object') {
      throw new InvalidArgumentError('invalid opts');
    }

    if (opts && opts.path != null) {
      if (typeof opts.path !== 'string') {
        throw new InvalidArgumentError('invalid opts.path');
      }

      let path = opts.path;
      if (!opts.path.startsWith('/')) {
        path = `/${path}`;
      }

      url = new URL(parseOrigin(url as string | URL).origin + path);
    } else {
      if (!opts) {
        opts = typeof url === 'object' ? url as Options : {};
      }

      url = parseURL(url);
    }

    const { agent, dispatcher = getGlobalDispatcher(), ...restOpts } = opts;

    if (agent) {
      throw new InvalidArgumentError('unsupported opts.agent. Did you mean opts.client?');
    }

    return fn.call(dispatcher, {
      ...restOpts,
      origin: url.origin,
      path: url.search ? `${url.pathname}${url.search}` : url.pathname,
      method: opts.method || (opts.body ? 'PUT' : 'GET'),
    }, handler);
  };
}

export const request = makeDispatcher(api.request);
export { Agent, Dispatcher, EnvHttpProxyAgent };
