// docs/runbook.md stays true to the code: every metric it names is registered, every command and option
// it runs exists, every /readyz check it names is one the bridge reports, and its links land on a heading.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli.js';
import { BridgeMetrics } from '../../src/observability/metrics.js';
import { CHECKOUT } from '../support/checkout.js';

const root = CHECKOUT;
const read = (file: string) => readFileSync(`${root}docs/${file}`, 'utf8');
const runbook = read('runbook.md');

/** GitHub's anchor of a heading: lower case, punctuation but hyphens dropped, spaces as hyphens. */
function anchors(markdown: string): Set<string> {
  const found = new Set<string>();
  for (const line of markdown.split('\n')) {
    const heading = /^#{1,6} (.*)$/.exec(line)?.[1];
    if (heading)
      found.add(
        heading
          .toLowerCase()
          .replace(/[^\p{L}\p{N} _-]/gu, '')
          .replace(/ /g, '-'),
      );
  }
  return found;
}

describe('docs/runbook.md', () => {
  it('names only metrics the bridge registers', async () => {
    const registered = new Set(
      (await new BridgeMetrics({ processMetrics: false }).registry.getMetricsAsJSON()).map((m) => m.name),
    );
    const named = new Set([...runbook.matchAll(/\b(bridge_[a-z_]+)/g)].map((m) => m[1] ?? ''));
    assert.ok(named.size >= 8, [...named].join(', '));
    for (const name of named) assert.ok(registered.has(name), `${name} is not a metric the bridge registers`);
  });

  it('runs only commands and options the CLI has', async () => {
    const program = await buildProgram();
    const find = (parent: Command, name: string) => parent.commands.find((c) => c.name() === name);
    // `docker exec opencrvs-bridge node …` (or `df`) names the container, not a command.
    const lines = [...runbook.matchAll(/opencrvs-bridge(?:\.js)? ([a-z-]+(?: [^`\n#]*)?)/g)]
      .map((m) => m[1] ?? '')
      .filter((line) => !/^(node|df) /.test(line));
    assert.ok(lines.length >= 15, `only ${lines.length} commands found`);
    for (const line of lines) {
      const [name = '', ...rest] = line.split(/\s+/);
      const command = find(program, name);
      assert.ok(command, `opencrvs-bridge ${name}: no such command`);
      const sub = rest[0] && find(command, rest[0]);
      const options = (sub || command).options.map((o) => o.long);
      for (const option of rest.filter((word) => word.startsWith('--')))
        assert.ok(
          options.includes(option.replace(/[^a-z-]/g, '')),
          `opencrvs-bridge ${line}: ${option} is not an option`,
        );
    }
  });

  it('names only /readyz checks the bridge reports', () => {
    const app = readFileSync(`${root}src/app.ts`, 'utf8');
    const checks = [...runbook.matchAll(/`\/readyz` fails `([a-z:<>-]+)`|checks\["?([a-z:<>-]+)"?\]/g)].map(
      (m) => m[1] ?? m[2] ?? '',
    );
    assert.ok(checks.length >= 4);
    for (const check of checks) {
      const name = check.replace(/<id>$/, '');
      assert.ok(app.includes(`name: '${name}`) || app.includes(`name: \`${name}`), `${check} is no readiness check`);
    }
  });

  it('links to headings that exist', () => {
    for (const [, file = '', anchor] of runbook.matchAll(/\]\(([a-z-]*\.md)?#([a-z0-9-]+)\)/g)) {
      const target = file ? read(file) : runbook;
      assert.ok(anchors(target).has(anchor ?? ''), `${file || 'runbook.md'}#${anchor} is no heading`);
    }
  });
});
