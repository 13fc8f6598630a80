/**
 * A Node.js older than the one the code needs, to start entries on. The machine's own Node, when it is older (its
 * PATH outside node_modules/.bin: Node 20 on the machines this project moved from), else this Node with its
 * version changed before any module loads, which is what the version check reads (src/node-version.ts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { REQUIRED_NODE_MAJOR } from '../../src/node-version.js';

export interface OlderNode {
  /** Which Node, for test titles: `/usr/bin/node (v20.20.2)` or `this Node posing as 20.20.2`. */
  what: string;
  /** The version the entry sees (`20.20.2`). */
  version: string;
  command: string;
  /** Arguments before the entry's own. */
  args: string[];
}

/** The Node version the stand-in poses as. */
const POSED = '20.20.2';

/** Finds the machine's own older Node, or builds the stand-in (see the file comment). */
export function olderNode(): OlderNode {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir || dir.split(path.sep).includes('node_modules')) continue;
    const candidate = path.join(dir, 'node');
    if (!existsSync(candidate)) continue;
    const probe = spawnSync(candidate, ['-p', 'process.versions.node'], { encoding: 'utf8' });
    const version = probe.stdout?.trim();
    if (probe.status === 0 && version && Number.parseInt(version, 10) < REQUIRED_NODE_MAJOR) {
      return { what: `${candidate} (v${version})`, version, command: candidate, args: [] };
    }
  }
  const pose = `Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '${POSED}' } });`;
  return { what: `this Node posing as ${POSED}`, version: POSED, command: process.execPath, args: ['--import', `data:text/javascript,${encodeURIComponent(pose)}`] };
}
