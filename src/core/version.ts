import manifest from '../../package.json' with { type: 'json' };

/** The package version, bundled at build time (no file is read at run time). */
export const VERSION: string = manifest.version;
