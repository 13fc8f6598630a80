/**
 * Summarizes a V8 CPU profile (`node --cpu-prof`, as `npm run bench -- --cpu-prof` writes for our server): the
 * functions with the most self time, self time by package, and the functions with the most time including what
 * they call, so "where does the time go" has a short answer.
 *
 *   npx tsx bench/profile.ts bench/results/profiles/<file>.cpuprofile [--top 25] [--skip SECONDS]
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  /** Microseconds. */
  startTime: number;
  endTime: number;
  samples: number[];
  /** Microseconds since the previous sample (the first: since startTime). */
  timeDeltas: number[];
}

/** Which package a script belongs to: an npm package, our src/, bench/, or Node itself. */
export function packageOf(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1] as string;
  if (url.startsWith('node:')) return 'node (core)';
  if (/\/src\//.test(url)) return 'src (ours)';
  return url.replace(/^file:\/\//, '').split('/').slice(-2).join('/');
}

const keyOf = (node: ProfileNode): string => {
  const { functionName, url, lineNumber } = node.callFrame;
  return `${functionName || '(anonymous)'}  ${url ? `${shortUrl(url)}:${lineNumber + 1}` : ''}`.trim();
};

/**
 * Time spent in each function including its callees. A function that appears several times on one stack
 * (recursion, or the promise machinery) is counted once, at its outermost frame.
 */
function inclusiveTimes(profile: CpuProfile, hits: Map<number, number>, key: (n: ProfileNode) => string): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const subtree = new Map<number, number>();
  const total = (id: number): number => {
    const known = subtree.get(id);
    if (known !== undefined) return known;
    const node = byId.get(id);
    const t = (hits.get(id) ?? 0) / 1000 + (node?.children ?? []).reduce((a, c) => a + total(c), 0);
    subtree.set(id, t);
    return t;
  };
  const out = new Map<string, number>();
  const walk = (id: number, onStack: Set<string>) => {
    const node = byId.get(id);
    if (!node) return;
    const k = key(node);
    const outer = !onStack.has(k);
    if (outer) out.set(k, (out.get(k) ?? 0) + total(id));
    if (outer) onStack.add(k);
    for (const c of node.children ?? []) walk(c, onStack);
    if (outer) onStack.delete(k);
  };
  const root = profile.nodes[0];
  if (root) walk(root.id, new Set());
  return out;
}

const shortUrl = (url: string) => url.replace(/^file:\/\/.*?node_modules\//, '').replace(/^file:\/\/.*\/(src|bench)\//, '$1/');

/**
 * The top functions by self time and the self time by package, as plain lines. `skipSeconds` leaves out the
 * start of the profile (boot, module loading, the harness's checks) so only the load counts.
 */
export async function summarizeProfile(file: string, top = 20, skipSeconds = 0): Promise<string> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  // Each sample is charged the time until the next one: its share of the profiled window.
  const hits = new Map<number, number>();
  let t = profile.startTime;
  const from = profile.startTime + skipSeconds * 1e6;
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i] ?? 0;
    const next = profile.timeDeltas[i + 1] ?? 0;
    if (t >= from) hits.set(id, (hits.get(id) ?? 0) + next);
  });
  const windowSeconds = (profile.endTime - Math.max(profile.startTime, from)) / 1e6;
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  let busy = 0;
  for (const node of profile.nodes) {
    const ms = (hits.get(node.id) ?? 0) / 1000; // charged in microseconds
    if (ms === 0) continue;
    const { functionName, url } = node.callFrame;
    if (functionName === '(idle)') continue;
    busy += ms;
    const key = keyOf(node);
    byFunction.set(key, (byFunction.get(key) ?? 0) + ms);
    const pkg = packageOf(url, functionName);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + ms);
  }
  const inclusive = inclusiveTimes(profile, hits, keyOf);
  const pct = (ms: number) => `${((100 * ms) / busy).toFixed(1)}%`.padStart(6);
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [
    `busy ${(busy / 1000).toFixed(1)} s of ${windowSeconds.toFixed(1)} s profiled (the first ${skipSeconds.toFixed(1)} s left out)`,
    '',
    'self time by function:',
    ...sorted(byFunction).map(([k, ms]) => `${pct(ms)} ${ms.toFixed(0).padStart(7)} ms  ${k}`),
    '',
    'self time by package:',
    ...sorted(byPackage).map(([k, ms]) => `${pct(ms)} ${ms.toFixed(0).padStart(7)} ms  ${k}`),
    '',
    'total time (self + callees) by function, outside Node internals:',
    ...sorted(new Map([...inclusive].filter(([k]) => !/^\(|node:|^runMicrotasks|^processTicksAndRejections/.test(k) && !k.includes('  node:'))))
      .map(([k, ms]) => `${pct(ms)} ${ms.toFixed(0).padStart(7)} ms  ${k}`),
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [file, ...rest] = process.argv.slice(2);
  const flag = (name: string, fallback: number) => {
    const i = rest.indexOf(name);
    return i >= 0 ? Number(rest[i + 1]) : fallback;
  };
  if (!file) {
    process.stderr.write('usage: npx tsx bench/profile.ts <file.cpuprofile> [--top N] [--skip SECONDS]\n');
    process.exit(1);
  }
  process.stdout.write(`${await summarizeProfile(file, flag('--top', 25), flag('--skip', 0))}\n`);
}
