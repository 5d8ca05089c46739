import assert from 'node:assert/strict';
import { ConfigError } from '../../src/core/errors.ts';
import type { Command } from '../../src/config/options.ts';
import { resolveConfig, type FlagValues } from '../../src/config/resolve-config.ts';

/** The ConfigError resolveConfig throws for these inputs; fails the test when it accepts them. */
export async function configErrorOf(flags: FlagValues, env: NodeJS.ProcessEnv, command: Command = 'run'): Promise<ConfigError> {
  try {
    await resolveConfig(flags, env, command);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.equal(error.code, 'bad_config');
    return error;
  }
  assert.fail('resolveConfig accepted the input');
}
