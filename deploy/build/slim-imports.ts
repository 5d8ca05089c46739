// esbuild plugin for both bundles: `import … from 'undici'` and `from 'prom-client'` in src/ resolve to
// slim/undici.ts and slim/prom-client.ts, which load only the parts src/ uses (see each file for what is left out).
// Imports inside node_modules and the slim files' own deep imports are untouched.
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'esbuild';

export const SLIM: Readonly<Record<string, string>> = {
  undici: fileURLToPath(new URL('slim/undici.ts', import.meta.url)),
  'prom-client': fileURLToPath(new URL('slim/prom-client.ts', import.meta.url)),
};

export function slimImports(): Plugin {
  return {
    name: 'ek-slim-imports',
    setup(build) {
      build.onResolve({ filter: /^(undici|prom-client)$/ }, (args) => {
        if (/[\\/]node_modules[\\/]/.test(args.importer)) return undefined;
        return { path: SLIM[args.path] ?? args.path };
      });
    },
  };
}
