/**
 * Loaded with `node --import` in front of the CLI: records the URL of every module the process resolves (ESM
 * imports, dynamic imports and CommonJS requires alike: Node 24's in-thread hooks see them all) and writes the list
 * as JSON to the file named by RECORD_IMPORTS_TO when the process exits.
 */
import { writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const target = process.env.RECORD_IMPORTS_TO;
const seen = new Set<string>();

registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context);
    seen.add(resolved.url);
    return resolved;
  },
});

process.on('exit', () => {
  if (target !== undefined) writeFileSync(target, JSON.stringify([...seen]));
});
