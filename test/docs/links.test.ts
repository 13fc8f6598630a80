/**
 * Every link in the project's Markdown (README, CONTRIBUTING, docs/, bench/, packages/) leads somewhere: a file
 * that exists in the repository, and, with a `#fragment`, a heading of that file (GitHub's anchors). Links to other
 * sites are not fetched (CI has no internet); the server's own pages (localhost) are checked by the playground test.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import GithubSlugger from 'github-slugger';
import MarkdownIt from 'markdown-it';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/child.js';

const md = new MarkdownIt();

/** The Markdown files in git (tracked and new, not ignored), relative to the root. */
function markdownFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.md'], { cwd: ROOT, encoding: 'utf8' });
  return out.split('\n').filter((f) => f !== '' && existsSync(path.join(ROOT, f)));
}

/** Every link target of a Markdown text (inline and reference links), outside code. */
function linksOf(text: string): string[] {
  const links: string[] = [];
  const walk = (tokens: ReturnType<typeof md.parse>) => {
    for (const token of tokens) {
      if (token.type === 'link_open') links.push(token.attrGet('href') ?? '');
      if (token.children) walk(token.children);
    }
  };
  walk(md.parse(text, {}));
  return links;
}

const anchorCache = new Map<string, Set<string>>();
/** The anchors GitHub gives the headings of a Markdown file. */
function anchorsOf(file: string): Set<string> {
  let anchors = anchorCache.get(file);
  if (!anchors) {
    const slugger = new GithubSlugger();
    anchors = new Set();
    const tokens = md.parse(readFileSync(file, 'utf8'), {});
    tokens.forEach((token, i) => {
      if (token.type === 'heading_open') anchors!.add(slugger.slug(tokens[i + 1]?.content ?? ''));
    });
    anchorCache.set(file, anchors);
  }
  return anchors;
}

/** What is wrong with `href` in `file`, or undefined when it leads somewhere. */
function brokenLink(file: string, href: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(href)) return undefined; // http(s), mailto: another site
  const [target = '', fragment] = href.split('#', 2);
  const resolved = target === '' ? path.join(ROOT, file) : path.resolve(path.dirname(path.join(ROOT, file)), decodeURIComponent(target));
  if (!resolved.startsWith(ROOT) || !existsSync(resolved)) return `${href}: no such file`;
  if (fragment === undefined || fragment === '') return undefined;
  if (statSync(resolved).isDirectory() || !resolved.endsWith('.md')) return `${href}: a fragment on a file that is not Markdown`;
  return anchorsOf(resolved).has(decodeURIComponent(fragment)) ? undefined : `${href}: no heading with that anchor`;
}

describe('documentation links', () => {
  const files = markdownFiles();

  it('finds the documents', () => {
    expect(files).toEqual(expect.arrayContaining(['README.md', 'CONTRIBUTING.md', 'docs/API.md', 'docs/DESIGN.md', 'bench/README.md']));
  });

  it.each(files)('%s: every link leads to a file and heading that exist', (file) => {
    const broken = linksOf(readFileSync(path.join(ROOT, file), 'utf8'))
      .map((href) => brokenLink(file, href))
      .filter((reason) => reason !== undefined);
    expect(broken).toEqual([]);
  });

  it('catches what it is for: a missing file and a missing heading', () => {
    expect(brokenLink('README.md', 'docs/nowhere.md')).toMatch(/no such file/);
    expect(brokenLink('README.md', 'docs/API.md#no-such-heading')).toMatch(/no heading/);
    expect(brokenLink('README.md', '#quick-start')).toBeUndefined();
    expect(brokenLink('README.md', 'docs/operations.md#production-checklist')).toBeUndefined();
  });
});
