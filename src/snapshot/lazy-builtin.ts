import { startupSnapshot } from 'node:v8';

/** What the bundler copied from the real module for the stand-in (deploy/build/snapshot-plugins.ts). */
export interface BuiltinShape {
  /** The module's own property names, so that a bundle's import of it needs no load to list them. */
  readonly keys: readonly string[];
  /** Values a library reads while it loads, served while the snapshot is built. */
  readonly atBuild: Readonly<Record<string, unknown>>;
  /**
   * Values that are Node's defaults unless a node option sets them: served without loading the module, at run time
   * too, while that option is in neither process.execArgv nor NODE_OPTIONS.
   */
  readonly defaults: Readonly<Record<string, { readonly value: unknown; readonly option: string }>>;
}

/**
 * A Node.js built-in module that the startup snapshot must not contain, loaded on first use instead.
 *
 * node:http, node:https, node:http2 and node:tls hold native handles (the HTTP parser, nghttp2 and OpenSSL
 * bindings) that V8 cannot serialize: loading one while the snapshot is built aborts the build. In the snapshot
 * bundle every import of them resolves to this stand-in, which loads the real module on the first read of one of its
 * values after the snapshot was deserialized and forwards everything to it from then on. Listing the names (an
 * `import { createServer } from 'node:http'` does) needs no load, nor does a value that is Node's default (undici's
 * client reads http.maxHeaderSize when it is created). So node:http loads when the first server starts, after the
 * first JWT, and node:tls only for an https upstream.
 *
 * While the snapshot is built, a library's module body may read only the values of `shape.atBuild`; any other read
 * throws, naming the property, so that a library upgrade that starts using one of these modules at load fails the
 * build instead of a start.
 */
export function lazyBuiltin(name: string, load: () => object, shape: BuiltinShape): object {
  let real: object | undefined;
  const known = new Set<PropertyKey>(shape.keys);
  // Decided at the first read, not when the bundle loads: that would be when the snapshot was built.
  let defaults: ReadonlyMap<string, unknown> | undefined;
  const defaultFor = (key: string): { value: unknown } | undefined => {
    defaults ??= new Map(Object.entries(shape.defaults).filter(([, { option }]) => !nodeOptionGiven(option)).map(([name, { value }]) => [name, value]));
    return defaults.has(key) ? { value: defaults.get(key) } : undefined;
  };
  const target = (key?: PropertyKey): object => {
    if (real !== undefined) return real;
    if (startupSnapshot.isBuildingSnapshot()) {
      throw new Error(`node:${name}${key === undefined ? '' : `.${String(key)}`} was used while the startup snapshot was built: `
        + 'give it a build-time value in deploy/build/snapshot-plugins.ts, or defer the use to run time');
    }
    real = load();
    return real;
  };
  return new Proxy({}, {
    get(_, key) {
      if (real === undefined && typeof key === 'string') {
        const building = startupSnapshot.isBuildingSnapshot();
        if (building && Object.hasOwn(shape.atBuild, key)) return shape.atBuild[key];
        const value = building ? shape.defaults[key] : defaultFor(key);
        if (value !== undefined) return value.value;
      }
      return Reflect.get(target(key), key) as unknown;
    },
    has: (_, key) => (real === undefined ? known.has(key) : Reflect.has(real, key)),
    ownKeys: () => (real === undefined ? [...shape.keys] : Reflect.ownKeys(real)),
    // The proxy's own target is an empty, extensible object: every property is reported configurable, as the Proxy
    // invariants require. Before the load, a property is described by an accessor that loads it when read.
    getOwnPropertyDescriptor(_, key) {
      if (real === undefined) return known.has(key) ? { configurable: true, enumerable: true, get: (): unknown => Reflect.get(target(key), key) } : undefined;
      const descriptor = Reflect.getOwnPropertyDescriptor(real, key);
      return descriptor === undefined ? undefined : { ...descriptor, configurable: true };
    },
    set: (_, key, value) => Reflect.set(target(key), key, value),
    defineProperty: (_, key, descriptor) => Reflect.defineProperty(target(key), key, descriptor),
    deleteProperty: (_, key) => Reflect.deleteProperty(target(key), key),
  });
}

function nodeOptionGiven(option: string): boolean {
  return [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((arg) => arg.includes(option));
}
