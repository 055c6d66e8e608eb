// serve's comparison of its configuration and mapping files with the disk is bounded: a check takes at
// most its time limit (a file that does not answer, a verify that does not end), one runs at a time, and
// stop() ends the one under way, its verify's worker thread included. Files that do not answer are named
// pipes here: reading one waits until something is written to it, whatever the machine's speed.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  constants,
  copyFileSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { packagePaths } from '../../src/config/index.js';
import { ConfigOnDisk, fileHash, verifyInWorker } from '../../src/config/on-disk.js';
import { createLogger } from '../../src/observability/logger.js';

const dir = mkdtempSync(join(tmpdir(), 'config-on-disk-bounds-'));
let count = 0;

after(() => rmSync(dir, { recursive: true, force: true }));

/** A configuration naming a site's copy of the birth mapping, and a watcher over both as serve makes it. */
function watched(timeoutMs?: number) {
  count += 1;
  const mapping = join(dir, `birth-${count}.yaml`);
  copyFileSync(join(packagePaths.mappings, 'birth.fhir.yaml'), mapping);
  const configFile = join(dir, `bridge-${count}.yaml`);
  writeFileSync(
    configFile,
    [
      'opencrvs:',
      '  tokenUrl: http://127.0.0.1:9/token',
      '  eventsUrl: http://127.0.0.1:9/events',
      '  clientId: bridge',
      '  clientSecret: not-a-real-secret',
      `store: { path: ${join(dir, `bridge-${count}.db`)} }`,
      'sources:',
      '  - id: emr',
      '    kind: fhir',
      '    baseUrl: http://127.0.0.1:9/fhir',
      `    mappings: [${mapping}, death.fhir]`,
      'routing: { defaultOffice: LHUYvwY2Aq1 }',
      '',
    ].join('\n'),
  );
  const lines: string[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (line: string) => lines.push(line) } });
  // As read at start: every watcher made here compares with these.
  const loaded = [configFile, mapping, join(packagePaths.mappings, 'death.fhir.yaml')].map((path) => ({
    path,
    hash: fileHash(path),
  }));
  const make = (limit?: number) =>
    new ConfigOnDisk(loaded, {
      logger,
      verify: (signal) => verifyInWorker({ path: configFile, env: {} }, signal),
      ...(limit ? { timeoutMs: limit } : {}),
    });
  const warnings = () =>
    lines.map((line) => JSON.parse(line)).filter((entry) => entry.level === 'warn' && entry.component === 'config');
  return { onDisk: make(timeoutMs), make, configFile, mapping, warnings };
}

const children: ChildProcess[] = [];
after(() => {
  for (const child of children) child.kill('SIGKILL');
});

/**
 * A named pipe in place of `path`. Should a read of it hold the event loop after all (a regression), a
 * child process lets it go after a while, so the test fails on its assertions rather than hanging.
 */
function pipeAt(path: string): void {
  rmSync(path, { force: true });
  execFileSync('mkfifo', [path]);
  const release =
    'const fs = require("fs"); setTimeout(() => setInterval(() => { try { fs.closeSync(fs.openSync(process.env.PIPE, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK)); } catch {} }, 50), 30_000)';
  children.push(spawn(process.execPath, ['-e', release], { env: { PIPE: path }, stdio: 'ignore' }));
}

/**
 * Lets whatever waits to read the pipe go on (it reads nothing), again and again until stopped: a reader
 * may open it a moment after any one of these.
 */
function releasing(pipe: string): () => void {
  const release = () => {
    try {
      closeSync(openSync(pipe, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // No reader now (ENXIO): nothing waits on it.
    }
  };
  release();
  const timer = setInterval(release, 50);
  return () => clearInterval(timer);
}

describe('the on-disk check is bounded', { skip: process.platform === 'win32' && 'named pipes' }, () => {
  it('gives up on a file read at start that no longer answers, says so once, and keeps its finding', async () => {
    const { onDisk, mapping, warnings } = watched(500);
    pipeAt(mapping);
    let stopReleasing = () => {};
    try {
      assert.equal(await onDisk.check(), undefined);
      assert.equal(await onDisk.check(), undefined);
      const said = warnings();
      assert.equal(said.length, 1, JSON.stringify(said));
      assert.match(said[0].msg, /could not compare the configuration and mapping files with the disk/);
      assert.equal(said[0].why, 'not done within 500 ms');
    } finally {
      stopReleasing = releasing(mapping);
      await onDisk.stop();
    }
    stopReleasing();
  });

  // On Node 20 an AbortSignal.timeout combined by AbortSignal.any can be collected before it fires
  // (nodejs/node#57736): the check then waited as long as the file did (here until the pipe's release, 30 s).
  it('gives up at its time limit even when the garbage collector runs meanwhile', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const { onDisk, mapping, warnings } = watched(500);
    pipeAt(mapping);
    const collecting = setInterval(gc, 20);
    let stopReleasing = () => {};
    try {
      const started = Date.now();
      const late = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), 5_000).unref());
      assert.equal(await Promise.race([onDisk.check(), late]), undefined, `not settled ${Date.now() - started} ms on`);
      assert.equal(warnings()[0]?.why, 'not done within 500 ms');
    } finally {
      clearInterval(collecting);
      stopReleasing = releasing(mapping);
      await onDisk.stop();
    }
    stopReleasing();
  });

  it('gives up on a verify that does not end, ends its worker, and verifies the next change', async () => {
    const { onDisk, make, configFile, warnings } = watched(2_000);
    const secret = join(dir, `secret-${count}`);
    pipeAt(secret);
    const text = readFileSync(configFile, 'utf8');
    writeFileSync(configFile, text.replace('  clientSecret: not-a-real-secret', `  clientSecretFile: ${secret}`));
    let release = () => {};
    try {
      assert.deepEqual(await onDisk.check(), {
        files: [configFile],
        problem: 'could not be checked: not done within 2000 ms',
      });
      assert.equal(warnings()[0]?.wouldLoad, false);
      // The worker may still be reading the pipe: let it go, then a further edit is verified on a new one
      // (one verify at a time: it waits for that worker to be gone).
      release = releasing(secret);
      writeFileSync(configFile, `${text}# edited\n`);
      assert.deepEqual(await make().check(), { files: [configFile] });
    } finally {
      release();
      await onDisk.stop();
    }
  });

  it('runs one check at a time: asks meanwhile share the one queued after it', async () => {
    const { onDisk, configFile, warnings } = watched();
    const secret = join(dir, `secret-${count}`);
    pipeAt(secret);
    const text = readFileSync(configFile, 'utf8');
    writeFileSync(configFile, text.replace('  clientSecret: not-a-real-secret', `  clientSecretFile: ${secret}`));
    let release = () => {};
    try {
      const first = onDisk.check();
      const second = onDisk.check();
      assert.notEqual(second, first);
      assert.equal(onDisk.check(), second);
      release = releasing(secret);
      // The pipe read empty: a secret file that is empty would not load.
      assert.match((await first)?.problem ?? '', /clientSecretFile: the file is empty/);
      assert.deepEqual(await second, await first);
      assert.equal(warnings().length, 1);
    } finally {
      release();
      await onDisk.stop();
    }
  });

  it('stop() ends the check under way: it settles, nothing is said, the finding stays as it was', async () => {
    const { onDisk, configFile, warnings } = watched();
    const secret = join(dir, `secret-${count}`);
    pipeAt(secret);
    const text = readFileSync(configFile, 'utf8');
    writeFileSync(configFile, text.replace('  clientSecret: not-a-real-secret', `  clientSecretFile: ${secret}`));
    const pending = onDisk.check();
    let release = () => {};
    try {
      // The verify cannot end before the pipe is written to: stopped while under way.
      await onDisk.stop();
      assert.equal(await pending, undefined);
      assert.equal(onDisk.current(), undefined);
      assert.deepEqual(warnings(), []);
    } finally {
      // Its worker, should it be reading the pipe already, ends once the read returns.
      release = releasing(secret);
    }
    release();
  });
});
