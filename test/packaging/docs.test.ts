// The user's documents: the README stays one page (≤ 15 KB) with the two commands users copy, and every relative
// link in it, in docs/ and in the other Markdown files of the repository points at a file (and heading) that exists.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { projectPath, projectRoot, readPackageJson, readProjectFile } from './helpers.ts';

const readme = readProjectFile('README.md');

/** The Markdown files users read: README, the top-level policies, docs/ and the READMEs under deploy/. */
function markdownFiles(): string[] {
  const docs = readdirSync(projectPath('docs')).filter((name) => name.endsWith('.md')).map((name) => projectPath('docs', name));
  const deploy = projectPath('deploy', 'kubernetes', 'README.md');
  return [projectPath('README.md'), projectPath('SECURITY.md'), projectPath('CHANGELOG.md'), deploy, ...docs];
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors(markdown: string): Set<string> {
  const slugs = new Set<string>();
  for (const match of markdown.matchAll(/^#{1,6}\s+(.+)$/gm)) {
    slugs.add((match[1] ?? '').trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-'));
  }
  return slugs;
}

/** Relative link targets of a Markdown text (inline links; code spans and fenced blocks skipped). */
function relativeLinks(markdown: string): string[] {
  const prose = markdown.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1] ?? '').filter((target) => !/^[a-z]+:/i.test(target));
}

void describe('README.md and docs/', () => {
  void test('the README is one page: at most 15 KB', () => {
    const size = Buffer.byteLength(readme);
    assert.ok(size <= 15 * 1024, `README.md is ${String(size)} bytes`);
  });

  void test('the README keeps the exact commands to try the demo and run the tests', () => {
    assert.ok(readme.includes('npm install && npm run demo'));
    assert.ok(readme.includes('npm install && npm test'));
  });

  void test('the README has the user\'s sections, and deploying comes before the reference', () => {
    const headings = [...readme.matchAll(/^## (.+)$/gm)].map((match) => match[1]);
    for (const heading of ['Try it', 'Deploy on Kubernetes', 'Configure', 'Read the token', 'Metrics and health', 'Troubleshoot']) {
      assert.ok(headings.includes(heading), `no "## ${heading}"`);
    }
    assert.ok(headings.indexOf('Deploy on Kubernetes') < headings.indexOf('Configure'));
    assert.match(readme, /kubectl get --raw \/\.well-known\/openid-configuration/);
    assert.match(readme, /### When to use a broker/);
  });

  void test('benchmarks, design notes and deviations live in docs/', () => {
    for (const name of ['benchmarks.md', 'design.md', 'deviations.md', 'troubleshooting.md', 'kubernetes.md', 'broker.md', 'monitoring.md', 'image.md']) {
      assert.ok(existsSync(projectPath('docs', name)), `docs/${name}`);
    }
    assert.doesNotMatch(readme, /^## Benchmarks/m);
    assert.match(readProjectFile('docs', 'benchmarks.md'), /npm run bench/);
  });

  void test('every relative link resolves to a file in the repository, and every anchor to a heading', () => {
    const broken: string[] = [];
    for (const file of markdownFiles()) {
      for (const link of relativeLinks(readProjectFile(relative(projectRoot, file)))) {
        const [path = '', anchor] = link.split('#');
        const target = path === '' ? file : join(dirname(file), decodeURIComponent(path));
        const where = `${relative(projectRoot, file)} → ${link}`;
        if (!existsSync(target)) {
          broken.push(`${where}: no such file`);
          continue;
        }
        if (anchor !== undefined && anchor !== '' && statSync(target).isFile() && target.endsWith('.md')) {
          if (!anchors(readProjectFile(relative(projectRoot, target))).has(anchor)) broken.push(`${where}: no such heading`);
        }
      }
    }
    assert.deepEqual(broken, []);
  });

  void test('LICENSE is the Apache-2.0 text the package declares; SECURITY.md and CHANGELOG.md exist', () => {
    assert.equal(readPackageJson().license, 'Apache-2.0');
    assert.match(readProjectFile('LICENSE'), /Apache License\s+Version 2\.0, January 2004/);
    assert.match(readProjectFile('SECURITY.md'), /^# Security policy/);
    assert.match(readProjectFile('CHANGELOG.md'), /^# Changelog/);
  });
});
