// The stand-in for node:http, node:https, node:http2 and node:tls in the snapshot bundle, at run time (outside a
// snapshot build; what it does while one is built is exercised by every `npm run build`).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lazyBuiltin, type BuiltinShape } from '../../src/snapshot/lazy-builtin.ts';

interface Fake {
  value: number;
  maxSize: number;
  make(): string;
}

function fake(shape: Partial<BuiltinShape> = {}): { module: Fake; loads: () => number } {
  let loads = 0;
  const real: Fake = { value: 1, maxSize: 99, make: () => 'made' };
  const module = lazyBuiltin('fake', () => {
    loads += 1;
    return real;
  }, { keys: Object.keys(real), atBuild: {}, defaults: {}, ...shape }) as Fake;
  return { module, loads: () => loads };
}

void describe('lazyBuiltin', () => {
  void it('lists the names, and answers `in`, without loading the module', () => {
    const { module, loads } = fake();
    assert.deepEqual(Object.keys(module), ['value', 'maxSize', 'make']);
    assert.ok('make' in module);
    assert.ok(!('other' in module));
    assert.equal(loads(), 0);
  });

  void it('copies like esbuild\'s interop does (names and descriptors) without loading, then reads through', () => {
    const { module, loads } = fake();
    const copy: Record<string, unknown> = {};
    for (const key of Object.getOwnPropertyNames(module)) {
      const descriptor = Object.getOwnPropertyDescriptor(module, key);
      Object.defineProperty(copy, key, { get: () => (module as unknown as Record<string, unknown>)[key], enumerable: descriptor?.enumerable ?? true });
    }
    assert.equal(loads(), 0);
    assert.equal((copy.make as () => string)(), 'made');
    assert.equal(loads(), 1);
  });

  void it('loads on the first value read, once, and forwards reads and writes from then on', () => {
    const { module, loads } = fake();
    assert.equal(module.value, 1);
    assert.equal(module.make(), 'made');
    module.value = 2;
    assert.equal(module.value, 2);
    assert.equal(loads(), 1);
    assert.deepEqual(Object.getOwnPropertyDescriptor(module, 'value'), { value: 2, writable: true, enumerable: true, configurable: true });
  });

  void it('serves a Node.js default without loading, unless the node option that changes it is given', () => {
    const option = '--fake-max-size';
    const defaults = { maxSize: { value: 16_384, option } };
    const plain = fake({ defaults });
    assert.equal(plain.module.maxSize, 16_384);
    assert.equal(plain.loads(), 0);

    const saved = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = `${option}=32768`;
    try {
      const given = fake({ defaults });
      assert.equal(given.module.maxSize, 99, 'the real module\'s value');
      assert.equal(given.loads(), 1);
    } finally {
      if (saved === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = saved;
    }
  });

  void it('serves build-time values only while a snapshot is built', () => {
    const { module, loads } = fake({ atBuild: { value: 7 } });
    assert.equal(module.value, 1);
    assert.equal(loads(), 1);
  });
});
