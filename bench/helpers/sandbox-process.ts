// Child process for the end-to-end benchmark: runs one sandbox server in its own process (its own
// event loop), as a real OpenCRVS or EMR would run apart from the bridge, so the bridge's figures are
// not charged with the servers' CPU time. Started by bench/helpers/sandboxes.ts through fork():
//   argv[2] = 'opencrvs' | 'fhir', argv[3] = births to seed (fhir only).
// Reports { ready: … } over IPC, answers 'cpu' with { cpuMs }, and exits when the parent disconnects or
// sends 'close'.
import { silentLogger } from '../../src/observability/logger.js';
import { DEMO_FACILITIES, facilityLocation, generateBirth } from '../../src/sandbox/demo/generate.js';
import { startFhirSandbox } from '../../src/sandbox/fhir/index.js';
import { startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';

const kind = process.argv[2];
const births = Number(process.argv[3] ?? 0);

async function main(): Promise<void> {
  let close: () => Promise<void>;
  if (kind === 'opencrvs') {
    const sim = await startOpenCrvsSimulator({ port: 0, logger: silentLogger });
    close = sim.close;
    process.send?.({
      ready: {
        baseUrl: sim.baseUrl,
        tokenUrl: sim.tokenUrl,
        eventsUrl: sim.eventsUrl,
        clientId: sim.clientId,
        clientSecret: sim.clientSecret,
      },
    });
  } else if (kind === 'fhir') {
    const seed = DEMO_FACILITIES.map(facilityLocation);
    for (let i = 0; i < births; i++) seed.push(...generateBirth(i, { prefix: 'bench' }));
    const started = performance.now();
    const fhir = await startFhirSandbox({ port: 0, seed, logger: silentLogger });
    close = fhir.close;
    process.send?.({ ready: { baseUrl: fhir.baseUrl, resources: seed.length, seedMs: performance.now() - started } });
  } else {
    throw new Error(`unknown sandbox kind ${String(kind)}`);
  }
  const stop = () => {
    close().finally(() => process.exit(0));
  };
  process.on('disconnect', stop);
  process.on('message', (message) => {
    if (message === 'close') stop();
    // CPU time used so far (user + system, ms), so the benchmark can tell who used the shared cores.
    if (message === 'cpu') {
      const { user, system } = process.cpuUsage();
      process.send?.({ cpuMs: (user + system) / 1000 });
    }
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
