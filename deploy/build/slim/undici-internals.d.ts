// Types for the undici files that slim/undici.ts imports directly (undici declares only its index), borrowed from
// undici's own declarations. undici is pinned to an exact version in package.json: see slim/undici.ts.
declare module 'undici/lib/dispatcher/dispatcher.js' {
  const Dispatcher: typeof import('undici').Dispatcher;
  export = Dispatcher;
}
declare module 'undici/lib/dispatcher/agent.js' {
  const Agent: typeof import('undici').Agent;
  export = Agent;
}
declare module 'undici/lib/dispatcher/env-http-proxy-agent.js' {
  const EnvHttpProxyAgent: typeof import('undici').EnvHttpProxyAgent;
  export = EnvHttpProxyAgent;
}
declare module 'undici/lib/api/index.js' {
  /** Dispatcher.prototype.request and its siblings, as undici's index installs them. */
  const api: Readonly<Record<'request' | 'stream' | 'pipeline' | 'upgrade' | 'connect', (this: unknown, ...args: unknown[]) => unknown>>;
  export = api;
}
declare module 'undici/lib/core/util.js' {
  export function parseOrigin(url: string | URL): URL;
  export function parseURL(url: unknown): URL;
}
declare module 'undici/lib/core/errors.js' {
  export const InvalidArgumentError: new (message: string) => Error;
}
declare module 'undici/lib/global.js' {
  export function getGlobalDispatcher(): import('undici').Dispatcher;
}
