// Reads a V8 .cpuprofile (node --cpu-prof) and says where the time went, by package: each sample is charged to the
// nearest frame on its stack that belongs to a package in node_modules or to ek-sidecar's own dist/, so time spent
// in Node's loader on behalf of a package's require() lands on that package.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileSummary {
  /** Milliseconds per owner, largest first, over the samples inside the cut. */
  readonly byOwner: readonly { readonly owner: string; readonly ms: number }[];
  readonly totalMs: number;
}

function ownerOfUrl(url: string): string | undefined {
  const inModules = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (inModules?.[1] !== undefined) return inModules[1];
  if (url.includes('/dist/')) return 'ek-sidecar (dist/)';
  return undefined;
}

/** Summarise the first `untilMs` of the profile (all of it when undefined); idle time is left out. */
export function summariseProfile(file: string, untilMs?: number): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const parent = new Map<number, number>();
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const ownerCache = new Map<number, string>();
  const ownerOf = (id: number): string => {
    const cached = ownerCache.get(id);
    if (cached !== undefined) return cached;
    const node = byId.get(id);
    const name = node?.callFrame.functionName ?? '';
    let owner: string;
    if (name === '(garbage collector)' || name === '(program)' || name === '(idle)' || name === '(root)') owner = name;
    else {
      let found: string | undefined;
      for (let at: number | undefined = id; at !== undefined && found === undefined; at = parent.get(at)) found = ownerOfUrl(byId.get(at)?.callFrame.url ?? '');
      owner = found ?? 'node internals (loader, bootstrap)';
    }
    ownerCache.set(id, owner);
    return owner;
  };
  const totals = new Map<string, number>();
  let elapsedUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    elapsedUs += delta;
    if (untilMs !== undefined && elapsedUs > untilMs * 1000) break;
    const owner = ownerOf(profile.samples[i] ?? 0);
    if (owner === '(idle)') continue;
    totals.set(owner, (totals.get(owner) ?? 0) + delta / 1000);
  }
  const byOwner = [...totals].map(([owner, ms]) => ({ owner, ms: Math.round(ms * 10) / 10 })).sort((a, b) => b.ms - a.ms);
  return { byOwner, totalMs: Math.round(byOwner.reduce((sum, entry) => sum + entry.ms, 0) * 10) / 10 };
}
