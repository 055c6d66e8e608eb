// `opencrvs-bridge demo`, as a newcomer runs it (`npm start`): the summary, what it leaves behind, and a
// busy port (8080 is often taken on a workstation). And `sandbox`, which a newcomer runs next.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { finished, runCli, spawnCli } from './helpers/bridge-cli.js';

/**
 * `sandbox` on free ports with `args` (and `env`), once it said it is up (or ended, or 40 s passed): the
 * process, its end (code and output), and its standard output so far.
 */
async function startedSandbox(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawnCli(['sandbox', '--opencrvs-port', '0', '--fhir-port', '0', '--dhis2-port', '0', ...args], env);
  const run = finished(child, 60_000);
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  for (let waited = 0; !out.includes('Press Ctrl+C') && child.exitCode === null && waited < 40_000; waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { child, run, output: () => out };
}

describe('opencrvs-bridge demo', () => {
  it('delivers every expected event, says so in one line, and removes its ledger at --exit', async () => {
    // LOG_LEVEL in capitals, as environment variables often are: it once stopped the demo's own config.
    const r = await runCli(['demo', '--exit', '--port', '0', '--admin-port', '0'], { LOG_LEVEL: 'WARN' }, 120_000);
    assert.equal(r.signal, null, 'it exited by itself (not killed at the time limit)');
    assert.equal(r.code, 0, r.stderr || r.stdout);
    assert.doesNotMatch(r.stdout, /\(try: /, 'no command offered on a folder --exit removes');
    const line = r.stdout.match(
      /Events: (\d+) found: (\d+) delivered \((\d+) births, (\d+) deaths; expected (\d+) and (\d+)\), (\d+) skipped, (\d+) not delivered/,
    );
    assert.ok(line, r.stdout);
    const [found, delivered, births, deaths, expectedBirths, expectedDeaths, skipped, problems] = line
      .slice(1)
      .map(Number);
    assert.equal(
      found,
      (delivered ?? 0) + (skipped ?? 0) + (problems ?? 0),
      'found = delivered + skipped + not delivered',
    );
    assert.equal(births, expectedBirths);
    assert.equal(deaths, expectedDeaths);
    assert.equal(problems, 0);
    const ledger = r.stdout.match(/Ledger\s+(\S+)/)?.[1];
    assert.ok(ledger, 'the ledger path is printed');
    assert.equal(existsSync(ledger), false, 'the demo ledger is removed when the demo stops');
  });

  it('while it serves, its printed configuration answers ledger: "did #1 arrive?"', async () => {
    const demo = spawnCli(['demo', '--port', '0', '--admin-port', '0']);
    try {
      let out = '';
      demo.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
      });
      const deadline = Date.now() + 120_000;
      while (!/\nresult: /.test(out)) {
        assert.ok(Date.now() < deadline && demo.exitCode === null, `the demo printed its summary: ${out}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      // The admin page at the address printed, with the token printed; not on the bridge's own port.
      const [, adminUrl, token] = out.match(/Admin UI\s+(\S+)\s+\(any user name, the token (\w+) as password\)/) ?? [];
      const bridgeUrl = out.match(/Bridge\s+(http:\S+)/)?.[1];
      assert.ok(adminUrl && token && bridgeUrl, out);
      // As the summary says: the browser's user name and password prompt, any name, the token as password.
      const basic = { authorization: `Basic ${Buffer.from(`any-name:${token}`).toString('base64')}` };
      const page = await fetch(adminUrl, { headers: basic });
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
      // The browser asks the listener for its icon: answered, not a 404 in the page's console.
      assert.equal((await fetch(new URL('/favicon.ico', adminUrl))).status, 204);
      const headers = { authorization: `Bearer ${token}` };
      assert.equal((await fetch(`${adminUrl}/api/summary`, { headers })).status, 200);
      assert.notEqual(new URL(adminUrl).port, new URL(bridgeUrl).port);
      assert.equal((await fetch(`${bridgeUrl}/admin/api/summary`, { headers })).status, 404);
      const file = out.match(/Its configuration\s+(\S+)/)?.[1];
      assert.ok(file && existsSync(file), out);
      const found = await runCli(['ledger', '--config', file, '--find', '#1'], {}, 60_000);
      assert.equal(found.code, 0, found.stderr || found.stdout);
      assert.match(found.stdout, /^1\s+(delivered|skipped)\s+/m);
      assert.match(found.stdout, /ATTEMPT\s+STEP/, 'its history');
    } finally {
      demo.kill('SIGTERM');
      await finished(demo, 30_000);
    }
  });

  it('holds its ledger as serve does: sync beside it is refused, replay goes through its admin API', async () => {
    // Its admin page on any free port: the printed configuration must name the port it got, or replay
    // could not reach it ("admin.port is 0") and would replay in its own process beside the demo.
    const demo = spawnCli(['demo', '--port', '0', '--admin-port', '0']);
    try {
      let out = '';
      demo.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
      });
      const deadline = Date.now() + 120_000;
      while (!/\nresult: /.test(out)) {
        assert.ok(Date.now() < deadline && demo.exitCode === null, `the demo printed its summary: ${out}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const file = out.match(/Its configuration\s+(\S+)/)?.[1];
      assert.ok(file && existsSync(file), out);
      const sync = await runCli(['sync', '--once', '--config', file], {}, 60_000);
      assert.equal(sync.code, 1, sync.stderr || sync.stdout);
      assert.match(
        sync.stderr,
        new RegExp(`sync failed: another bridge process uses this ledger \\(demo on [^,]+, pid ${demo.pid},`),
      );
      assert.doesNotMatch(sync.stdout, /Events|delivered/, 'no pass was run');
      // Row 1 is delivered or skipped, not dead: the demo's admin API answers so for it (exit 1).
      const replay = await runCli(['replay', '--config', file, '1'], {}, 60_000);
      assert.match(replay.stdout, new RegExp(`^Replayed by the running demo on [^,]+, pid ${demo.pid},`, 'm'));
      assert.doesNotMatch(replay.stderr, /replaying in this process/);
      assert.match(replay.stdout, /^Skipped 1: /m);
      assert.equal(replay.code, 1, replay.stderr || replay.stdout);
      // Read-only commands still work beside it.
      const found = await runCli(['ledger', '--config', file, '--find', '#1'], {}, 60_000);
      assert.equal(found.code, 0, found.stderr || found.stdout);
    } finally {
      demo.kill('SIGTERM');
      await finished(demo, 30_000);
    }
  });

  it('interrupted before its summary, leaves no ledger or configuration file behind', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'demo-interrupted-'));
    try {
      const demo = spawnCli(['demo', '--port', '0', '--admin-port', '0'], { TMPDIR: tmp });
      const deadline = Date.now() + 60_000;
      while (!readdirSync(tmp).some((name) => name.startsWith('opencrvs-bridge-demo-'))) {
        assert.ok(Date.now() < deadline && demo.exitCode === null, 'the demo made its folder');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      demo.kill('SIGINT');
      const ended = await finished(demo, 30_000);
      assert.equal(ended.signal, null, 'it ended by itself');
      const left = readdirSync(tmp).filter((name) => name.startsWith('opencrvs-bridge-demo-'));
      assert.deepEqual(left, [], "nothing of the demo's left in the temporary folder");
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  for (const flag of ['--port', '--admin-port']) {
    it(`stops with exit 2 and names ${flag} when its port is taken, leaving nothing running`, async () => {
      const busy = createServer();
      await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
      const address = busy.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      const ports = { '--port': '0', '--admin-port': '0', [flag]: String(port) };
      try {
        const r = await runCli(['demo', '--exit', ...Object.entries(ports).flat()], {}, 60_000);
        assert.equal(r.signal, null, 'it exited by itself (not killed at the time limit)');
        assert.equal(r.code, 2, r.stderr || r.stdout);
        assert.match(r.stderr, /EADDRINUSE|in use/);
        assert.match(r.stderr, new RegExp(`demo: another port for the .*demo ${flag} N`));
      } finally {
        busy.close();
      }
    });
  }

  it('says in --help what it starts, the DHIS2 simulator too, and that a port of 0 is any free port', async () => {
    const help = await runCli(['demo', '--help'], {}, 30_000);
    assert.equal(help.code, 0, help.stderr);
    assert.match(
      help.stdout.replace(/\s+/g, ' '),
      /a FHIR server seeded with births and deaths, a DHIS2 tracker simulator,/,
    );
    // Each option's text runs to the next option's line (commander wraps long ones).
    const texts = new Map(
      [...help.stdout.matchAll(/^ {2}(--[a-z0-9-]+)[^\n]*(?:\n {4,}[^\n]*)*/gm)].map((m) => [
        m[1],
        m[0].replace(/\s+/g, ' '),
      ]),
    );
    for (const option of ['--port', '--admin-port', '--opencrvs-port', '--fhir-port'])
      assert.match(texts.get(option) ?? '', /\(?0 = any free port/, `${option}: ${texts.get(option)}`);
  });

  it('names its own flags, not config keys, when --port and --admin-port are the same', async () => {
    const r = await runCli(['demo', '--exit', '--port', '9080'], {}, 60_000);
    assert.equal(r.code, 2, r.stderr || r.stdout);
    assert.match(r.stderr, /demo: --port and --admin-port are both 9080: give one of them another port/);
    assert.doesNotMatch(r.stderr, /admin\.port/);
  });

  it('reads an empty LOG_LEVEL as unset: its summary is not buried in info lines', async () => {
    // `LOG_LEVEL=` is how a shell or a compose file unsets it; the demo once logged at info for it.
    const r = await runCli(['demo', '--exit', '--port', '0'], { LOG_LEVEL: '' }, 120_000);
    assert.equal(r.code, 0, r.stderr || r.stdout);
    assert.match(r.stdout, /Events: \d+ found/);
    assert.doesNotMatch(`${r.stdout}${r.stderr}`, /"level":"(?:info|debug|trace)"/);
  });

  it('refuses a LOG_LEVEL that is no level as a configuration error (exit 2), before starting anything', async () => {
    const r = await runCli(['demo', '--exit', '--port', '0', '--admin-port', '0'], { LOG_LEVEL: 'verbose' }, 30_000);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /configuration error: LOG_LEVEL: verbose is not a log level/);
  });

  it('refuses a count or a port that is not a whole number, with exit 2, before starting anything', async () => {
    for (const [flag, value] of [
      ['--births', 'abc'],
      ['--deaths', '2.5'],
      ['--port', '70000'],
      ['--admin-port', '99999'],
    ] as const) {
      const r = await runCli(['demo', '--exit', flag, value], {}, 30_000);
      assert.equal(r.code, 2, `${flag} ${value}: ${r.stderr}`);
      assert.match(
        r.stderr,
        new RegExp(`option '${flag} <n>' argument '${value}' is invalid\\. a whole number from 0 to`),
      );
    }
  });
});

describe('opencrvs-bridge sandbox', () => {
  it('names the flag of a port in use, or of a --seed folder that is not there (exit 2)', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const address = busy.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    try {
      const taken = await runCli(
        ['sandbox', '--opencrvs-port', String(port), '--fhir-port', '0', '--dhis2-port', '0'],
        {},
        60_000,
      );
      assert.equal(taken.code, 2, taken.stderr);
      assert.match(taken.stderr, new RegExp(`--opencrvs-port ${port}: the port is in use`));
    } finally {
      busy.close();
    }
    const args = ['sandbox', '--opencrvs-port', '0', '--fhir-port', '0', '--dhis2-port', '0'];
    const noSeed = await runCli([...args, '--seed', '/nonexistent-seed-folder'], {}, 60_000);
    assert.equal(noSeed.code, 2, noSeed.stderr);
    assert.match(noSeed.stderr, /--seed \/nonexistent-seed-folder: no such folder/);
  });

  it('refuses a --notify-heartbeat that is no number of seconds a timer can hold (exit 2), before starting', async () => {
    // 1e12 s overflowed the interval into a heartbeat every millisecond; 'abc' turned heartbeats off.
    for (const value of ['abc', '1e12', '2147484', '0']) {
      const r = await runCli(
        ['sandbox', '--notify', 'http://127.0.0.1:9/notify', '--notify-heartbeat', value],
        {},
        30_000,
      );
      assert.equal(r.code, 2, `--notify-heartbeat '${value}': ${r.stderr}`);
      assert.match(
        r.stderr,
        /option '--notify-heartbeat <seconds>' argument '.*' is invalid\. a number of seconds above 0 and at most 2147483/,
      );
      assert.doesNotMatch(r.stdout, /Press Ctrl\+C/, 'nothing started');
    }
  });

  it('sends heartbeats on a valid --notify-heartbeat, and none early at the longest one', async () => {
    // Heartbeats counted by the path each sandbox notifies.
    const heartbeats = new Map<string, number>();
    const receiver = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      req.on('end', () => {
        if (/"valueCode":\s*"heartbeat"/.test(body))
          heartbeats.set(req.url ?? '', (heartbeats.get(req.url ?? '') ?? 0) + 1);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const address = receiver.address();
    const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/notify`;
    const sandboxes: Awaited<ReturnType<typeof startedSandbox>>[] = [];
    try {
      // The longest period runs beside a short one started after it, until the short one has sent two: the
      // long one had as long, on a machine as loaded, to send one early (a period past the timer's limit
      // fires every millisecond). A fixed second could pass on a loaded machine before either sent any.
      sandboxes.push(await startedSandbox(['--notify', `${url}/longest`, '--notify-heartbeat', '2147483']));
      sandboxes.push(await startedSandbox(['--notify', `${url}/short`, '--notify-heartbeat', '0.2']));
      const deadline = Date.now() + 30_000;
      while ((heartbeats.get('/notify/short') ?? 0) < 2) {
        assert.ok(Date.now() < deadline, `heartbeats every 0.2 s: ${heartbeats.get('/notify/short') ?? 0} in 30 s`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      for (const { child } of sandboxes) child.kill('SIGTERM');
      for (const { run } of sandboxes) {
        const { code, stderr } = await run;
        assert.equal(code, 0, stderr);
      }
      assert.equal(heartbeats.get('/notify/longest') ?? 0, 0, 'the longest period sends none early');
    } finally {
      for (const { child } of sandboxes)
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      receiver.close();
    }
  });

  it('reads LOG_LEVEL as the other commands do: empty is unset, one that is no level is exit 2', async () => {
    const args = ['sandbox', '--opencrvs-port', '0', '--fhir-port', '0', '--dhis2-port', '0'];
    const bogus = await runCli(args, { LOG_LEVEL: 'verbose' }, 60_000);
    assert.equal(bogus.code, 2, bogus.stderr);
    assert.match(bogus.stderr, /configuration error: LOG_LEVEL: verbose is not a log level/);
    // Empty: it starts, at info (pino refused the empty level with a stack trace).
    const { child, run } = await startedSandbox([], { LOG_LEVEL: '' });
    child.kill('SIGTERM');
    const { code, stdout, stderr } = await run;
    assert.equal(code, 0, stderr);
    assert.match(stdout, /Press Ctrl\+C/);
    assert.match(stdout, /"level":"info"/);
  });

  it('--fhir-as-openmrs prints the REST URL beside the FHIR one, and the openmrs line a config takes, which answers', async () => {
    const { child, run, output } = await startedSandbox(['--fhir-as-openmrs']);
    const out = output();
    try {
      const fhir = out.match(/FHIR R4 sandbox on (http:\/\/\S+\/fhir) \(answering as OpenMRS FHIR2\)/)?.[1];
      assert.ok(fhir, out);
      const rest = out.match(/^ {2}OpenMRS REST: +(http:\/\/\S+)/m)?.[1];
      assert.equal(rest, `${new URL(fhir).origin}/ws/rest/v1`, out);
      // The line, as YAML under a source, names that URL; and the listing answers there.
      const line = out.match(/^ {2}in a config: +(openmrs: \{[^}]*\})/m)?.[1] ?? '';
      assert.deepEqual(parseYaml(line), { openmrs: { restUrl: rest } }, out);
      const listing = await fetch(`${rest}/relationship?person=nobody&v=default`);
      assert.equal(listing.status, 200);
      assert.deepEqual(await listing.json(), { results: [] });
    } finally {
      child.kill('SIGTERM');
      await run;
    }
  });

  it('writes each log line with one component', async () => {
    const { child, run, output } = await startedSandbox([], { LOG_LEVEL: 'debug' });
    const out = output();
    // A request to each, so their request logs are in it too.
    for (const url of out.match(/http:\/\/127\.0\.0\.1:\d+\/(?:fhir|api)\b/g) ?? []) {
      await fetch(`${url}/${url.endsWith('/fhir') ? 'Patient' : 'system/info'}`).catch(() => undefined);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    child.kill('SIGTERM');
    const { stdout, stderr } = await run;
    const lines = `${stdout}\n${stderr}`.split('\n').filter((line) => line.startsWith('{'));
    assert.ok(
      lines.some((line) => line.includes('fhir-sandbox-http')),
      'a FHIR request was logged',
    );
    for (const line of lines) assert.ok((line.match(/"component":/g) ?? []).length <= 1, line);
  });
});
