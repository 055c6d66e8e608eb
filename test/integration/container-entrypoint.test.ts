// The container without a Docker engine: the Dockerfile is parsed and its steps replayed in temporary
// folders (build stage: the package's files, dependencies, `npm run build`, `npm prune --omit=dev`;
// runtime stage: exactly the files its COPY lines name), then its ENTRYPOINT + CMD runs with
// BRIDGE_CONFIG pointing at a config for the simulators, and its HEALTHCHECK command must pass.
//
// Dependencies: by default the checkout's node_modules is copied in place of the build stage's
// `npm ci --ignore-scripts && npm rebuild better-sqlite3 --build-from-source` (same lock file; the
// native build alone takes minutes). BRIDGE_TEST_NPM_CI=1 runs that RUN line for real (the lock file
// lists every platform binary npm ci asks for: test/unit/lockfile.test.ts).
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type OpenCrvsSimulator, startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { CHECKOUT } from '../support/checkout.js';
import { simulatorOpenCrvs } from './helpers/bridge-harness.js';

const repo = CHECKOUT;
const REAL_NPM_CI = process.env.BRIDGE_TEST_NPM_CI === '1';

interface Instruction {
  op: string;
  args: string;
}

interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Dockerfile → stages of instructions (continuation lines joined, comments dropped). */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!current && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1).trim()} `;
      continue;
    }
    logical.push(`${current}${line}`.trim());
    current = '';
  }
  const stages: Stage[] = [];
  for (const line of logical) {
    const space = line.indexOf(' ');
    const op = line.slice(0, space).toUpperCase();
    const args = line.slice(space + 1).trim();
    if (op === 'FROM') {
      const [from = '', , name] = args.split(/\s+/);
      stages.push({ from, name, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ op, args });
    }
  }
  return stages;
}

function jsonArray(args: string): string[] {
  const parsed: unknown = JSON.parse(args);
  assert.ok(Array.isArray(parsed) && parsed.every((p) => typeof p === 'string'), `exec form expected: ${args}`);
  return parsed;
}

function only(stage: Stage, op: string): Instruction {
  const found = stage.instructions.filter((i) => i.op === op);
  assert.equal(found.length, 1, `exactly one ${op}`);
  return found[0] as Instruction;
}

function sh(command: string, cwd: string): void {
  const r = spawnSync('sh', ['-c', command], { cwd, encoding: 'utf8', timeout: 600_000 });
  assert.equal(r.status, 0, `${command}\n${r.stdout}\n${r.stderr}`);
}

const dockerfile = parseDockerfile(readFileSync(join(repo, 'Dockerfile'), 'utf8'));
const [buildStage, runtimeStage] = dockerfile;
const work = mkdtempSync(join(tmpdir(), 'container-'));
const buildDir = join(work, 'build');
const appDir = join(work, 'app');
/** The image's /data (its last WORKDIR and the volume) on this machine. */
const dataDir = join(work, 'data');
/** A path inside the image (/app/…) as it lies on this machine. */
const inImage = (arg: string) => (arg.startsWith('/app/') ? join(appDir, arg.slice('/app/'.length)) : arg);
let sim: OpenCrvsSimulator;
let serve: ChildProcess | undefined;
const figures: string[] = [];

describe('Dockerfile', () => {
  it('builds on Node 22 slim in two stages and runs as a non-root user with /data, 8080 and a health check', () => {
    assert.equal(dockerfile.length, 2);
    assert.ok(buildStage && runtimeStage);
    // Node 22 LTS pinned to a patch release, the same in both stages (the native module's ABI).
    assert.match(buildStage.from, /^node:22\.\d+\.\d+-bookworm-slim$/);
    assert.equal(runtimeStage.from, buildStage.from);
    // The OCI version label says what package.json says.
    const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string };
    const labels = only(runtimeStage, 'LABEL').args;
    assert.match(labels, new RegExp(`org\\.opencontainers\\.image\\.version="${pkg.version.replaceAll('.', '\\.')}"`));
    assert.match(labels, /org\.opencontainers\.image\.revision="\$\{SOURCE_COMMIT\}"/);
    const runs = buildStage.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);
    assert.ok(runs.some((r) => /npm ci\b/.test(r) && /npm rebuild better-sqlite3/.test(r)));
    assert.ok(runs.some((r) => /npm run build/.test(r) && /npm prune --omit=dev/.test(r)));
    assert.notEqual(only(runtimeStage, 'USER').args, 'root');
    // The volume holds the ledger (personal data): owned by that user, and closed to everyone else.
    const dataRun = runtimeStage.instructions.find((i) => i.op === 'RUN' && /mkdir -p \/data\b/.test(i.args))?.args;
    assert.match(dataRun ?? '', new RegExp(`chown ${only(runtimeStage, 'USER').args}:\\S+ /data\\b`));
    assert.match(dataRun ?? '', /chmod 0?700 \/data\b/);
    assert.deepEqual(jsonArray(only(runtimeStage, 'VOLUME').args), ['/data']);
    assert.equal(only(runtimeStage, 'EXPOSE').args, '8080');
    assert.match(only(runtimeStage, 'ENV').args, /BRIDGE_CONFIG=\/config\/bridge\.yaml/);
    assert.deepEqual(jsonArray(only(runtimeStage, 'ENTRYPOINT').args), ['node', '/app/bin/opencrvs-bridge.js']);
    // An image that used the default store.path (./bridge.db, read from the working directory before it was
    // read from the config's folder) keeps finding its ledger on the volume: the last working directory is /data.
    assert.equal(runtimeStage.instructions.filter((i) => i.op === 'WORKDIR').at(-1)?.args, '/data');
    assert.deepEqual(jsonArray(only(runtimeStage, 'CMD').args), ['serve']);
    assert.match(only(runtimeStage, 'HEALTHCHECK').args, /CMD \["node", "\/app\/bin\/healthcheck\.js"\]/);
    assert.match(only(runtimeStage, 'ENV').args, /BRIDGE_HEALTH_FILE=\/tmp\//);
  });
});

describe('the container entrypoint from a production install', () => {
  before(async () => {
    assert.ok(buildStage && runtimeStage);
    // Build stage. COPY from the context = the package's tracked files (what .dockerignore lets through).
    const started = Date.now();
    mkdirSync(buildDir, { recursive: true });
    // safe.directory: a checkout owned by another user than the one running the tests (a CI runner as root
    // in a clone made by another uid) is otherwise refused by git as of "dubious ownership".
    const files = execFileSync('git', ['-c', 'safe.directory=*', 'ls-files', '-z'], { cwd: repo, encoding: 'utf8' })
      .split('\0')
      .filter(Boolean);
    for (const file of files) {
      if (!existsSync(join(repo, file))) continue; // deleted in the working tree, not yet committed
      mkdirSync(dirname(join(buildDir, file)), { recursive: true });
      cpSync(join(repo, file), join(buildDir, file));
    }
    for (const { args } of buildStage.instructions.filter((i) => i.op === 'RUN')) {
      if (args.startsWith('apt-get')) continue; // the toolchain is on this machine already
      if (/npm ci\b/.test(args) && !REAL_NPM_CI) {
        cpSync(join(repo, 'node_modules'), join(buildDir, 'node_modules'), { recursive: true, verbatimSymlinks: true });
        continue;
      }
      sh(args, buildDir);
    }
    figures.push(
      `build stage ${((Date.now() - started) / 1000).toFixed(1)} s (${REAL_NPM_CI ? 'npm ci' : 'node_modules copied'})`,
    );
    // Runtime stage: exactly what its COPY lines name.
    for (const { args } of runtimeStage.instructions.filter((i) => i.op === 'COPY')) {
      const parts = args.split(/\s+/);
      const fromBuild = parts[0] === '--from=build';
      const [source = '', target = ''] = fromBuild ? parts.slice(1) : parts;
      const from = fromBuild ? join(buildDir, source.replace(/^\/app\//, '')) : join(buildDir, source);
      const to = join(appDir, target.replace(/^\.\/?/, ''));
      cpSync(from, target.endsWith('/') && !fromBuild ? join(to, source) : to, {
        recursive: true,
        verbatimSymlinks: true,
      });
    }
    sim = await startOpenCrvsSimulator({ port: 0 });
  });

  after(async () => {
    if (serve && serve.exitCode === null) serve.kill('SIGKILL');
    await sim?.close();
    rmSync(work, { recursive: true, force: true });
    if (figures.length) console.log(`container test figures: ${figures.join('; ')}`);
  });

  function runtimeEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
    for (const match of only(runtimeStage as Stage, 'ENV').args.matchAll(/(\w+)=(\S+)/g))
      env[match[1] ?? ''] = match[2];
    return { ...env, ...extra };
  }

  it('holds the production dependencies only, better-sqlite3 native binding included', () => {
    const modules = join(appDir, 'node_modules');
    for (const dev of ['typescript', 'tsx', '@biomejs/biome', 'playwright-core', 'autocannon'])
      assert.ok(!existsSync(join(modules, dev)), `${dev} is in the production install`);
    for (const dep of ['express', 'pino', 'yaml', 'better-sqlite3/build/Release/better_sqlite3.node'])
      assert.ok(existsSync(join(modules, dep)), `${dep} is missing`);
    // Its compile leftovers are not (the serve test below opens a ledger through what is left).
    for (const leftover of ['deps', 'src', 'build/Release/obj', 'build/Release/obj.target', 'build/Release/sqlite3.a'])
      assert.ok(!existsSync(join(modules, 'better-sqlite3', leftover)), `better-sqlite3/${leftover} is shipped`);
    assert.ok(existsSync(join(appDir, 'dist', 'cli.js')));
    assert.ok(!existsSync(join(appDir, 'src')), 'sources are not shipped');
  });

  it('prints the help of the CLI', () => {
    const entrypoint = jsonArray(only(runtimeStage as Stage, 'ENTRYPOINT').args);
    const [command = '', ...args] = entrypoint;
    mkdirSync(dataDir, { recursive: true });
    const r = spawnSync(command === 'node' ? process.execPath : command, [...args.map(inImage), '--help'], {
      cwd: dataDir,
      env: runtimeEnv({}),
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    for (const name of ['serve', 'sync', 'doctor', 'demo']) assert.match(r.stdout, new RegExp(`\\b${name}\\b`));
  });

  it('prints the version of the package.json it ships', () => {
    const [command = '', ...args] = jsonArray(only(runtimeStage as Stage, 'ENTRYPOINT').args);
    mkdirSync(dataDir, { recursive: true });
    const r = spawnSync(command === 'node' ? process.execPath : command, [...args.map(inImage), '--version'], {
      cwd: dataDir,
      env: runtimeEnv({}),
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const shipped = JSON.parse(readFileSync(join(appDir, 'package.json'), 'utf8')) as { version: string };
    const source = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string };
    assert.equal(shipped.version, source.version);
    assert.match(r.stdout, new RegExp(`^${source.version.replaceAll('.', '\\.')} \\(ledger schema \\d+\\)\n$`));
    // Built with SOURCE_COMMIT, the image names the commit too (the Dockerfile's RUN line, replayed).
    const recorded = runtimeStage?.instructions.find((i) => i.op === 'RUN' && /SOURCE_COMMIT/.test(i.args))?.args;
    assert.ok(recorded, 'the RUN line that records SOURCE_COMMIT');
    const commit = '0123456789abcdef0123456789abcdef01234567';
    const write = spawnSync('sh', ['-c', recorded.replaceAll('/app/', `${appDir}/`)], {
      env: { ...process.env, SOURCE_COMMIT: commit },
    });
    assert.equal(write.status, 0, write.stderr?.toString());
    try {
      const withCommit = spawnSync(process.execPath, [...args.map(inImage), '--version'], {
        cwd: dataDir,
        env: runtimeEnv({}),
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.match(withCommit.stdout, new RegExp(`\\(ledger schema \\d+, commit ${commit}\\)\n$`));
    } finally {
      rmSync(join(appDir, 'BUILD_COMMIT'), { force: true });
    }
  });

  it('serves with the config from BRIDGE_CONFIG and passes its HEALTHCHECK', async () => {
    const config = join(work, 'bridge.yaml');
    writeFileSync(
      config,
      JSON.stringify({
        opencrvs: simulatorOpenCrvs(sim),
        // As examples/production.yaml gives it: on the volume, absolute (a relative path starts from /config).
        store: { path: join(dataDir, 'bridge.db') },
        // Port 0, read back from the start-up log: a port reserved beforehand could be taken (by another
        // test file, or an outbound connection) before serve listens on it.
        http: { host: '127.0.0.1', port: 0 },
        routing: { defaultOffice: 'LHUYvwY2Aq1' },
      }),
    );
    mkdirSync(dataDir, { recursive: true });
    // The image's /tmp path, moved into this test's folder (the ENV line's value is checked above).
    const healthFile = join(work, 'opencrvs-bridge.health');
    const [command = '', ...args] = [
      ...jsonArray(only(runtimeStage as Stage, 'ENTRYPOINT').args),
      ...jsonArray(only(runtimeStage as Stage, 'CMD').args),
    ];
    const started = Date.now();
    const child = spawn(command === 'node' ? process.execPath : command, args.map(inImage), {
      cwd: dataDir,
      env: runtimeEnv({ BRIDGE_CONFIG: config, LOG_LEVEL: 'info', BRIDGE_HEALTH_FILE: healthFile }),
    });
    serve = child;
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    const deadline = Date.now() + 60_000;
    // serve installs its signal handlers and logs its port once started.
    while (!output.includes('opencrvs-bridge serving')) {
      assert.ok(Date.now() < deadline && child.exitCode === null, `serve did not finish starting: ${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const port = Number(/"port":(\d+)[^\n]*opencrvs-bridge serving/.exec(output)?.[1]);
    assert.ok(port > 0, `serve logged its port: ${output}`);
    let status = 0;
    while (status !== 200) {
      assert.ok(child.exitCode === null, `serve exited (${child.exitCode}): ${output}`);
      assert.ok(Date.now() < deadline, `no /healthz within 60 s: ${output}`);
      status = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.status,
        () => 0,
      );
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    figures.push(`serve answered /healthz after ${Date.now() - started} ms`);
    // The image's own health check command, as it stands: serve told it its port (port 0 here, any
    // port in a real configuration) through the health file.
    const healthcheck = () => {
      const args = only(runtimeStage as Stage, 'HEALTHCHECK').args;
      const probe = jsonArray(args.slice(args.indexOf('CMD ') + 4));
      const [probeCommand = '', ...probeArgs] = probe;
      return spawnSync(probeCommand === 'node' ? process.execPath : probeCommand, probeArgs.map(inImage), {
        env: runtimeEnv({ BRIDGE_HEALTH_FILE: healthFile }),
        timeout: 10_000,
        encoding: 'utf8',
      });
    };
    assert.equal(readFileSync(healthFile, 'utf8'), `http://127.0.0.1:${port}/healthz\n`);
    const check = healthcheck();
    assert.equal(check.status, 0, `HEALTHCHECK command failed: ${check.stderr}`);
    // SIGTERM (docker stop) ends it cleanly.
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, output);
    assert.ok(existsSync(join(work, 'data', 'bridge.db')));
    // Stopped: the address is gone, so the check cannot pass on what another process holds there later.
    assert.ok(!existsSync(healthFile), 'the health file outlived serve');
  });
});
