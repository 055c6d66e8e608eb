// npm run bench:scrub — how long the OpenCRVS client takes, on the event loop, to take the values it
// sent (withoutSentValues) and its secrets (SecretScrubber.value) out of one error answer: a realistic
// 2.4 MB JSON body (a country configuration's 500 that dumps its location list), an adversarial 1 MB
// body (every string escaped over and over, nothing plain ASCII), and one adversarial 64 kB string. Then
// how long classifying such an answer takes (classify.ts reads OpenCRVS's own words in the raw answer): a
// 3.8 MB list of field problems, a 9 MB HTML page, 100,000 `<` without a `>`, 64 kB of createdAtLocation.
// Then the logger's free-text scrubber (scrubString) on 1 MB built against each of its patterns: a run
// with no `@` or no second dot, `eyJ` over and over.
// Best of a few rounds: on a shared machine the best round is the one least disturbed.
import { scrubString } from '../src/observability/redact.js';
import { SecretScrubber } from '../src/observability/secret-scrubber.js';
import { classifyHttpFailure } from '../src/opencrvs/classify.js';
import { sentEchoes, sentValues, withoutSentValues } from '../src/opencrvs/scrub.js';

const DECLARATION = {
  'child.name': { firstname: 'Zoé', middlename: 'Amara', surname: "O'Brien" },
  'child.dob': '2026-03-14',
  'child.gender': 'female',
  'child.placeOfBirth': 'HEALTH_FACILITY',
  'child.birthLocation': '6f2a7c0e-3b1d-4a55-9c7e-0d4b8e2f1a93',
  'child.weightAtBirth': '3.2',
  'mother.name': { firstname: 'Ndé', surname: 'Mwansa-Phiri' },
  'mother.dob': '1994-07-02',
  'mother.nid': '123456789',
  'mother.nationality': 'ZMB',
  'mother.address': {
    country: 'ZMB',
    province: 'a1b2c3d4-0000-4000-8000-000000000001',
    district: 'a1b2c3d4-0000-4000-8000-000000000002',
    town: 'Chikobo',
    street: 'Plot 14, Kalingalinga Road',
  },
  'father.name': { firstname: 'Dušan', surname: 'Mwansa' },
  'father.dob': '1990-11-23',
  'father.nid': '987654321',
  'informant.relation': 'MOTHER',
  'informant.phoneNo': '0971234567',
  'informant.email': 'nde.mwansa@example.org',
};

const ROUNDS = 5;

function realisticBody(): string {
  // Location names as a country writes them: mostly ASCII, some accented, some with '&' or a quote.
  const names = ['Ibombo District', 'Chibombo', 'Île-de-Kafue', "Ng'ombe Ward", 'Isamba & Ilanga', 'Nsanjé', 'Mpika'];
  const locations = [];
  for (let i = 0; locations.length < 5_000; i++) {
    const name = `${names[i % names.length]} ${i}`;
    locations.push({
      id: `${(i * 2654435761).toString(16).padStart(8, '0').slice(-8)}-1c2d-4e5f-8a9b-${i.toString().padStart(12, '0')}`,
      name,
      alias: [name.toUpperCase()],
      partOf: `Location/${i % 97}`,
      locationType: i % 5 === 0 ? 'HEALTH_FACILITY' : 'ADMIN_STRUCTURE',
      status: 'active',
      jurisdictionType: 'DISTRICT',
      url: `https://countryconfig.example.org/locations?name=${encodeURIComponent(name)}&type=ADMIN_STRUCTURE`,
      statistics: { year: 2025, male_population: 10_000 + i, female_population: 11_000 + i, crude_birth_rate: 35.7 },
      description: `Imported from the 2025 census; last checked by the registrar's office (entry ${i})`,
    });
  }
  return JSON.stringify({
    statusCode: 500,
    error: 'Internal Server Error',
    message: 'Unexpected failure from country config action confirmation API',
    request: { declaration: DECLARATION },
    stack: `Error: confirmation failed for Zoé O'Brien\n    at confirm (/app/src/api/confirm.ts:42:11)\n`.repeat(50),
    data: { locations },
  });
}

/** Every unit worth a decoding pass or a fold: escapes that decode three times over, letters that decompose. */
function adversarialText(length: number): string {
  const unit = '%2525&amp;amp;#233;\\\\u00e9ÉÑ\u2019Nd&eacute; ';
  return unit.repeat(Math.ceil(length / unit.length)).slice(0, length);
}

function adversarialBody(): string {
  const strings: Record<string, string> = {};
  for (let i = 0; i < 16; i++) strings[`${adversarialText(40)}${i}`] = adversarialText(65_536 - 64);
  return JSON.stringify(strings);
}

const sent = sentEchoes(sentValues([DECLARATION]));
const scrubber = new SecretScrubber();
scrubber.add('f3b5c6d7-8e9f-4a0b-9c1d-2e3f4a5b6c7d');
scrubber.add('s3cr3t-Cl1ent-Secr3t-Value!');
scrubber.add(`eyJhbGciOiJSUzI1NiJ9.${'eyJzdWIiOiJib3QifQ'.repeat(30)}.${'c2lnbmF0dXJl'.repeat(40)}`, { renewed: true });

function best(fn: () => unknown): number {
  let fastest = Number.POSITIVE_INFINITY;
  for (let r = 0; r < ROUNDS; r++) {
    const start = performance.now();
    fn();
    fastest = Math.min(fastest, performance.now() - start);
  }
  return fastest;
}

const cases: Array<[string, unknown]> = [
  ['realistic JSON error body', JSON.parse(realisticBody())],
  ['adversarial JSON error body', JSON.parse(adversarialBody())],
  ['adversarial single string', adversarialText(65_536)],
];
console.log(
  `scrub benchmark: one error answer, values sent (${sent.size} forms) then secrets (${scrubber.size}), best of ${ROUNDS}`,
);
for (const [label, body] of cases) {
  const size = JSON.stringify(body).length;
  const values = best(() => withoutSentValues(body, sent));
  const withoutSent = withoutSentValues(body, sent);
  const secrets = best(() => scrubber.value(withoutSent));
  const kept = JSON.stringify(scrubber.value(withoutSent)).length;
  console.log(
    `${label.padEnd(28)} ${(size / 1_048_576).toFixed(2).padStart(5)} MB  ` +
      `values sent ${values.toFixed(0).padStart(6)} ms  secrets ${secrets.toFixed(0).padStart(6)} ms  ` +
      `(${(kept / 1024).toFixed(0)} kB kept)`,
  );
}

// Each once reread from every start: 'a' × 64 kB (an OpenCRVS 503 body) took 4.7 s before.
const MB = 1 << 20;
const fill = (unit: string, length = MB) => unit.repeat(Math.ceil(length / unit.length)).slice(0, length);
const freeText: Array<[string, string]> = [
  ["'a', no '@'", fill('a')],
  ["'a' then '@' and no domain", `${fill('a', MB / 2)}@${fill('b.', MB / 2)}`],
  ["'eyJ' over and over", fill('eyJ')],
  ["'eyJ's, one dot", `${fill('eyJ', MB / 2)}.${fill('a', MB / 2)}`],
  ["'?a.' (search parameters)", fill('?a.')],
  ["' //' then 'a:' (no '@')", ` //${fill('a:', MB - 3)}`],
];
for (const [label, text] of freeText) {
  const ms = best(() => scrubString(text));
  console.log(
    `scrubString ${label.padEnd(30)} ${(text.length / 1_048_576).toFixed(2).padStart(5)} MB  ${ms.toFixed(1).padStart(8)} ms`,
  );
}
const secretsOnly = best(() => new SecretScrubber().value({ message: fill('a', 65_000), error: fill('b', 65_000) }));
console.log(`SecretScrubber.value two 64 kB runs of letters        ${secretsOnly.toFixed(1).padStart(8)} ms`);

// Classification reads the raw answer (its words, before any scrubbing), so it is bounded on its own.
const problems = Array.from({ length: 20_000 }, (_, i) => ({
  message: 'Unexpected field createdAtLocation',
  id: `createdAtLocation.f${i}`,
  value: 'x'.repeat(100),
}));
const classified: Array<[string, number, unknown]> = [
  ['400 field problem list', 400, { message: JSON.stringify(problems) }],
  ['502 HTML page', 502, `<html><body>${'<p>row name</p>'.repeat(600_000)}</body></html>`],
  ["502 '<' without '>'", 502, '<'.repeat(100_000)],
  ["400 'createdAtLocation' × 64 kB", 400, { message: 'createdAtLocation '.repeat(3_641) }],
];
for (const [label, status, raw] of classified) {
  const size = typeof raw === 'string' ? raw.length : JSON.stringify(raw).length;
  const ms = best(() => classifyHttpFailure({ operation: 'notify', status, body: 'cut', raw }, Date.now()));
  console.log(
    `classify ${label.padEnd(24)} ${(size / 1_048_576).toFixed(2).padStart(5)} MB  ${ms.toFixed(1).padStart(8)} ms`,
  );
}
