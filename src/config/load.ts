import { accessSync, constants, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { ValidateFunction } from 'ajv';
import cron from 'node-cron';
import { type Document, parseDocument, visit, YAMLError, YAMLParseError } from 'yaml';
import { dhis2SettingsOf } from '../sources/dhis2/settings.js';
import { baseUrlKey } from '../util/fhir-base.js';
import { checkAdmin } from './admin.js';
import validateConfig from './config-validator.generated.js';
import { ConfigError } from './errors.js';
import { subscriptionSecretProblem } from './inbound-secret.js';
import { defaultMappings, isMappingPath, packagePaths, shippedMappingFile } from './paths.js';
import { atPointer, describeAjvError, pointerParts, pointerToPath } from './schema.js';
import { fileSignature, rememberSecretFile, rememberUnsetSecret, secretLeftUnset } from './secret-files.js';
import { resolveStorePath } from './store-path.js';
import type { BridgeConfig, PollSettings, SourceSettings } from './types.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** Schema problems listed in one error (the first names the key path). */
const MAX_PROBLEMS_SHOWN = 5;

/** `…File` key → the key it fills. A secret can come inline, from ${ENV}, or from a file. */
const SECRET_FILE_KEYS: Readonly<Record<string, string>> = {
  clientSecretFile: 'clientSecret',
  accessTokenFile: 'accessToken',
  tokenFile: 'token',
  passwordFile: 'password',
  secretFile: 'secret',
  hmacSecretFile: 'hmacSecret',
};

/**
 * profiles/config.schema.json compiled ahead by scripts/schema-validators.mjs (Ajv's standalone code, with the
 * options of createAjv({ verbose: true })): compiling it at each start cost every command, `ledger --find`
 * included, 0.15 s of CPU. test/unit/schema-validators.test.ts fails when it is out of date.
 */
const validator = validateConfig as unknown as ValidateFunction;

/**
 * Validates against the schema. A value that was one whole `${NAME}` is text after interpolation, which
 * is how a container sets a port or a flag (`port: ${BRIDGE_PORT}`): where the schema wants a number or
 * a boolean there, the text is read as one and validated again. Only there: YAML's own numbers are not
 * turned into text (a secret `0x1F` would become "31", an office `00123` "123").
 */
function validateSchema(data: unknown, fromEnv: ReadonlySet<string>) {
  let ok = validator(data);
  if (!ok && fromEnv.size > 0) {
    let converted = false;
    for (const error of validator.errors ?? []) {
      if (error.keyword !== 'type' || !fromEnv.has(pointerToPath(error.instancePath))) continue;
      const value = typedFromText(atPointer(data, error.instancePath), String(error.params.type));
      if (value === undefined) continue;
      setAtPointer(data, error.instancePath, value);
      converted = true;
    }
    if (converted) ok = validator(data);
  }
  return { ok, errors: validator.errors ?? [] };
}

/** "9000" as an integer or number, "true"/"false" as a boolean; undefined when the text is not one. */
function typedFromText(value: unknown, type: string): number | boolean | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (type === 'boolean') return text === 'true' ? true : text === 'false' ? false : undefined;
  if (type === 'integer') return /^-?\d{1,15}$/.test(text) ? Number(text) : undefined;
  if (type === 'number') return /^-?\d{1,15}(\.\d+)?$/.test(text) ? Number(text) : undefined;
  return undefined;
}

function setAtPointer(root: unknown, pointer: string, value: unknown): void {
  const parts = pointerParts(pointer);
  const last = parts.pop();
  const parent = atPointer(root, parts.length ? `/${parts.join('/')}` : '');
  if (last !== undefined && parent && typeof parent === 'object') Reflect.set(parent, last, value);
}

const ENV_REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const WHOLE_ENV_REFERENCE = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/;

/** Key path → the environment variables its value was made from (to name them when it is refused). */
type EnvOrigins = Map<string, string[]>;

/**
 * Replaces `${NAME}` in every string with the environment value; an unset name is an error, but in a
 * secret key the command does not read (`reading`, as for a `…File`) the key is left out and remembered
 * as given (rememberUnsetSecret): a read-only command still answers while the secret's variable is missing,
 * or holds a value serve would refuse.
 * The key paths of values that were one whole reference go into `whole` (see validateSchema), and the
 * names each value used into `origins`.
 */
function interpolate(
  value: unknown,
  env: Env,
  path: string,
  file: string | undefined,
  whole: Set<string>,
  origins: EnvOrigins,
  reading: SecretFileReading,
): unknown {
  if (typeof value === 'string') {
    if (WHOLE_ENV_REFERENCE.test(value)) whole.add(path);
    const names = [...value.matchAll(ENV_REFERENCE)].map((m) => m[1] ?? '');
    if (names.length > 0) origins.set(path, [...new Set(names)]);
    return value.replace(ENV_REFERENCE, (_, name: string) => {
      const found = env[name];
      if (found === undefined) throw new ConfigError(path, `environment variable ${name} is not set`, file);
      return found;
    });
  }
  if (Array.isArray(value))
    return value.map((item, i) => interpolate(item, env, `${path}[${i}]`, file, whole, origins, reading));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const at = path ? `${path}.${k}` : k;
      // Set or not, the variable is not read: a value this command does not use (an admin token of 'x') is
      // not its to refuse, as a `…File` left unread is not opened.
      if (SECRET_KEYS.has(k) && typeof v === 'string' && !readsSecretFile(reading, at) && namesVariable(v)) {
        rememberUnsetSecret(out, k);
        continue;
      }
      out[k] = interpolate(v, env, at, file, whole, origins, reading);
    }
    return out;
  }
  return value;
}

function namesVariable(value: string): boolean {
  return value.search(ENV_REFERENCE) >= 0;
}

/**
 * Where a refused value came from, when it was written as `${NAME}`: the file shows only the reference, so
 * the message names the variable to fix (never its value). Empty when the value was written in the file.
 */
function envOrigin(origins: EnvOrigins, path: string, value: unknown): string {
  const names = origins.get(path);
  if (!names) return '';
  if (names.length > 1) return ` (it is made from the environment variables ${names.join(', ')})`;
  return value === ''
    ? ` (it comes from the environment variable ${names[0]}, which is set but empty)`
    : ` (it comes from the environment variable ${names[0]})`;
}

/** Which secrets a command reads, from a `…File` or a `${NAME}` (LoadConfigOptions.secretFiles). */
export type SecretFileReading = 'all' | 'outbound' | 'sources' | 'none';

/** A subscription's `secret` or `hmacSecret` (or its `…File`): what an EMR presents to the receiver. */
const SUBSCRIPTION_SECRET = /^sources\[\d+\]\.subscription\./;

/** Whether the secret (or its `…File` key) at `keyPath` is read under `reading`. */
function readsSecretFile(reading: SecretFileReading, keyPath: string): boolean {
  if (reading === 'outbound') return !keyPath.startsWith('admin.') && !SUBSCRIPTION_SECRET.test(keyPath);
  return reading === 'all' || (reading === 'sources' && keyPath.startsWith('sources['));
}

/**
 * A secret the configuration gives: its value, or its `…File` key, left unread for a command that does not
 * use it (LoadConfigOptions.secretFiles). Read, a `…File` key is gone, so this is the value alone then.
 */
function secretGiven(owner: object, key: string): boolean {
  return (
    Boolean(Reflect.get(owner, key)) ||
    typeof Reflect.get(owner, `${key}File`) === 'string' ||
    secretLeftUnset(owner, key)
  );
}

/**
 * Reads every `…File` secret into its plain key (in place), relative paths from the config's folder. One
 * that `reading` leaves unread keeps its `…File` key (the schema checks that it names a file) and leaves
 * the plain key unset: a consumer finds no secret rather than one never checked.
 */
function resolveSecretFiles(
  node: unknown,
  path: string,
  baseDir: string,
  file: string | undefined,
  reading: SecretFileReading,
): void {
  if (Array.isArray(node)) {
    for (const [i, item] of node.entries()) resolveSecretFiles(item, `${path}[${i}]`, baseDir, file, reading);
    return;
  }
  if (!node || typeof node !== 'object') return;
  const obj = node as Record<string, unknown>;
  for (const [key, value] of Object.entries(obj)) {
    const keyPath = path ? `${path}.${key}` : key;
    const target = SECRET_FILE_KEYS[key];
    if (target && typeof value === 'string') {
      if (obj[target] !== undefined) throw new ConfigError(keyPath, `give either ${target} or ${key}, not both`, file);
      if (!readsSecretFile(reading, keyPath)) continue;
      let text: string;
      let signature: string;
      // Relative to the config file's folder, as every path in it is: said in full.
      const secretPath = isAbsolute(value) ? value : resolve(baseDir, value);
      try {
        // Before the read: a change made during it is then seen by the first look (secret-files.ts).
        signature = fileSignature(secretPath);
        text = readFileSync(secretPath, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        throw new ConfigError(
          keyPath,
          `cannot read the file ${secretPath} (${code})${unreadableHint(code, secretPath)}`,
          file,
        );
      }
      // A byte-order mark (a file saved as "UTF-8 with BOM" on Windows) is no part of the secret.
      const secret = text.replace(/^\uFEFF/, '').replace(/\r?\n$/, '');
      if (!secret) throw new ConfigError(keyPath, 'the file is empty', file);
      checkSecretText(secret, keyPath, file, 'a second line in the file, a Windows \\r?');
      obj[target] = secret;
      delete obj[key];
      // The file is followed while the bridge runs (a rotated secret is swapped in place).
      rememberSecretFile(obj, target, { path: secretPath, keyPath, signature });
    } else if (SECRET_KEYS.has(key) && typeof value === 'string') {
      checkSecretText(value, keyPath, file, 'from an environment variable or a YAML block value?');
    } else {
      resolveSecretFiles(value, keyPath, baseDir, file, reading);
    }
  }
}

const SECRET_KEYS = new Set(Object.values(SECRET_FILE_KEYS));

/**
 * A secret mounted from the host keeps the host file's owner and mode (a Compose file secret, a bind
 * mount): root's 0600 file is unreadable by the image's uid 1000, and EACCES alone does not say who tried.
 * Nor does it say what refused: a host folder `root 0700` mounted as /run/secrets locks the user out of
 * every file in it, whatever their modes, and the folder is then what to change.
 */
function unreadableHint(code: string, path: string): string {
  if (code !== 'EACCES' || typeof process.getuid !== 'function') return '';
  const uid = process.getuid();
  const folder = closedFolder(path);
  return folder
    ? `: this process runs as uid ${uid}, which may not enter the folder ${folder}; let that user in (chown ${uid} ${folder}, or chmod 711 ${folder})`
    : `: this process runs as uid ${uid}, which may not read it; make the file readable by that user (e.g. chmod 0444, or chown ${uid})`;
}

/** The first folder above `path` (from the root down) this process may not enter, if one. */
function closedFolder(path: string): string | undefined {
  const folders: string[] = [];
  for (let dir = dirname(path); !folders.includes(dir); dir = dirname(dir)) folders.unshift(dir);
  return folders.find((dir) => {
    try {
      accessSync(dir, constants.X_OK);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EACCES';
    }
  });
}

/**
 * A line break or other control character in a secret (a file with a second line, a stray \r from
 * Windows) cannot go into an HTTP header: the runtime's error about it quotes the whole header, token
 * and all, and the failure reads as a network error. Refused here, without the value.
 */
function checkSecretText(secret: string, keyPath: string, file: string | undefined, likely: string): void {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is looked for
  if (/[\u0000-\u001f\u007f]/.test(secret)) {
    throw new ConfigError(
      keyPath,
      `holds a line break or another control character (${likely}): a secret is one line`,
      file,
    );
  }
}

function checkSemantics(config: BridgeConfig, file?: string): void {
  const o = config.opencrvs;
  // A domain whose every URL is also given would be silently unused: a config moved from the sandbox to a
  // real deployment by adding `domain:` would keep talking to the sandbox.
  const accessToken = secretGiven(o, 'accessToken');
  if (o.domain && o.eventsUrl && (o.tokenUrl || accessToken)) {
    const given = accessToken ? 'opencrvs.eventsUrl is' : 'opencrvs.tokenUrl and opencrvs.eventsUrl are';
    // 1.9 reads its locations from the gateway, which the events URL already names (docs/opencrvs-api.md,
    // "URLs"): a domain would add nothing there either, though an operator told of the gateway may think so.
    const gateway =
      o.version === '1.9'
        ? ' (OpenCRVS 1.9 finds the gateway for its location API from opencrvs.eventsUrl: https://register.<domain>/api/events or https://gateway.<domain>/events)'
        : '';
    throw new ConfigError(
      'opencrvs.domain',
      `is not used: ${given} given too${gateway}; give the domain alone, or the URLs without it`,
      file,
    );
  }
  if (o.domain) {
    const tokenUrl = `https://gateway.${o.domain}/auth/token`;
    // An address has no gateway.<domain>: the URL made from it would be refused under a key not written.
    if (!URL.canParse(tokenUrl)) {
      throw new ConfigError(
        'opencrvs.domain',
        'must be a host name without scheme or path, e.g. farajaland.opencrvs.dev (the bridge calls https://gateway.<domain> and https://register.<domain>); for an address such as 127.0.0.1:7070, give opencrvs.tokenUrl and opencrvs.eventsUrl instead',
        file,
      );
    }
    o.tokenUrl ??= tokenUrl;
    o.eventsUrl ??= `https://register.${o.domain}/api/events`;
  }
  if (!o.eventsUrl) throw new ConfigError('opencrvs.eventsUrl', 'is required (or give opencrvs.domain)', file);
  if (!accessToken) {
    if (!o.tokenUrl) throw new ConfigError('opencrvs.tokenUrl', 'is required (or give opencrvs.domain)', file);
    if (!o.clientId) throw new ConfigError('opencrvs.clientId', 'is required (or give opencrvs.accessToken)', file);
    if (!secretGiven(o, 'clientSecret')) {
      throw new ConfigError(
        'opencrvs.clientSecret',
        'is required (clientSecret, clientSecretFile, or an environment reference)',
        file,
      );
    }
  }
  checkUrl(o.tokenUrl, 'opencrvs.tokenUrl', file);
  checkUrl(o.eventsUrl, 'opencrvs.eventsUrl', file);
  checkAdmin(config.admin, config.http, file);
  if (config.delivery.mode === 'single-call' && o.version !== '2.0') {
    throw new ConfigError('delivery.mode', 'single-call needs OpenCRVS version 2.0', file);
  }
  const seen = new Set<string>();
  for (const [i, source] of config.sources.entries()) {
    if (seen.has(source.id)) throw new ConfigError(`sources[${i}].id`, `duplicate source id "${source.id}"`, file);
    seen.add(source.id);
    source.auth ??= { type: 'none' };
    source.poll ??= { enabled: true, schedule: '*/1 * * * *', overlapSeconds: 30, pageSize: 100 };
    source.mappings ??= defaultMappings(source.kind, dhis2SettingsOf(source).program);
    checkFirstSync(source.poll, source.kind, `sources[${i}].poll`, file);
    // Unchecked, a typo here passed validate and doctor, and serve then never polled.
    if (source.poll.enabled !== false && !cron.validate(source.poll.schedule)) {
      throw new ConfigError(
        `sources[${i}].poll.schedule`,
        'is not a cron expression: 5 fields, or 6 with seconds first (e.g. "*/5 * * * *": every 5 minutes)',
        file,
      );
    }
    checkUrl(source.baseUrl, `sources[${i}].baseUrl`, file);
    if (source.kind === 'dhis2') checkDhis2BaseUrl(source.baseUrl, `sources[${i}].baseUrl`, file);
    checkKindKeys(source, `sources[${i}]`, file);
    checkSubscriptionSecrets(source, `sources[${i}].subscription`, file);
    if (source.alsoKnownAs !== undefined) source.alsoKnownAs = checkAlsoKnownAs(source, `sources[${i}]`, file);
    if (source.openmrs !== undefined)
      source.openmrs = { restUrl: openmrsRestUrl(source, `sources[${i}].openmrs`, file) };
    if (source.timeZone !== undefined) checkTimeZone(source.timeZone, `sources[${i}].timeZone`, file);
    source.mappings = resolveMappings(source.mappings, `sources[${i}].mappings`, file);
    if (source.dhis2?.fields !== undefined)
      checkDhis2Fields(source.dhis2.fields, source.dhis2.trackedEntityType, `sources[${i}].dhis2.fields`, file);
    checkUrl(source.auth.tokenUrl, `sources[${i}].auth.tokenUrl`, file);
    const auth = source.auth;
    const need = (key: keyof typeof auth, why: string) => {
      if (!secretGiven(auth, key)) throw new ConfigError(`sources[${i}].auth.${key}`, `is required for ${why}`, file);
    };
    if (auth.type === 'bearer' || auth.type === 'pat') need('token', `auth type ${auth.type}`);
    if (auth.type === 'basic') {
      need('username', 'basic auth');
      need('password', 'basic auth');
    }
    if (auth.type === 'oauth2') {
      need('tokenUrl', 'oauth2');
      need('clientId', 'oauth2');
      need('clientSecret', 'oauth2');
    }
    // A key the type does not read would be ignored without a word (`username` beside a bearer token:
    // the operator believes basic auth is sent).
    const used = AUTH_KEYS[auth.type] ?? [];
    for (const key of Object.keys(auth)) {
      if (key === 'type' || used.includes(SECRET_FILE_KEYS[key] ?? key)) continue;
      throw new ConfigError(`sources[${i}].auth.${key}`, `is not used by auth type ${auth.type}`, file);
    }
  }
}

/**
 * The bridge compares these, as it does the admin token, and by the same rules: a one-character secret
 * was taken, and guessed at some thousand tries a second. Refused by path, never quoted.
 */
function checkSubscriptionSecrets(source: SourceSettings, path: string, file?: string): void {
  for (const key of ['secret', 'hmacSecret'] as const) {
    const value = source.subscription?.[key];
    const problem = value === undefined ? undefined : subscriptionSecretProblem(value);
    if (problem) throw new ConfigError(`${path}.${key}`, problem, file);
  }
}

/** The keys each source auth type reads (the `…File` forms are read into these before this check). */
const AUTH_KEYS: Record<string, string[]> = {
  none: [],
  bearer: ['token'],
  pat: ['token'],
  basic: ['username', 'password'],
  oauth2: ['tokenUrl', 'clientId', 'clientSecret', 'scope'],
};

/**
 * Keys of the other kind of source would be ignored without a word: a FHIR source with `dhis2:` polls
 * no programme, and `writeBack.dataElement` on one reads as if the tracking id went into DHIS2, while
 * the FHIR identifier write-back (on by default) is what runs.
 */
function checkKindKeys(source: SourceSettings, path: string, file?: string): void {
  const other = source.kind === 'fhir' ? 'dhis2' : 'fhir';
  const foreign: string[] = [];
  if (source.kind === 'fhir') {
    if (source.dhis2 !== undefined) foreign.push('dhis2');
    for (const key of ['dataElement', 'programStage', 'attribute'] as const) {
      if (source.writeBack?.[key] !== undefined) foreign.push(`writeBack.${key}`);
    }
  } else {
    // (writeBack's FHIR keys have schema defaults, so they are there whatever was written.)
    if (source.subscription !== undefined) foreign.push('subscription');
    if (source.alsoKnownAs !== undefined) foreign.push('alsoKnownAs');
    if (source.openmrs !== undefined) foreign.push('openmrs');
  }
  const [first] = foreign;
  if (first) {
    throw new ConfigError(
      `${path}.${first}`,
      `is for ${other} sources; this source is kind ${source.kind} (remove it, or change kind)`,
      file,
    );
  }
}

/**
 * `alsoKnownAs` normalised as the FHIR client takes baseUrl (no trailing slash). Each must be a base: no
 * query nor fragment, which no reference's base carries, so such an entry would match nothing. One naming
 * baseUrl's server or an earlier entry's (compared as references are: baseUrlKey) is refused: likely a
 * copy left where another address was meant.
 */
function checkAlsoKnownAs(source: SourceSettings, path: string, file?: string): string[] {
  const seen = new Map<string | undefined, string>([[baseUrlKey(source.baseUrl), `${path}.baseUrl`]]);
  return (source.alsoKnownAs ?? []).map((entry, j) => {
    const at = `${path}.alsoKnownAs[${j}]`;
    checkUrl(entry, at, file);
    if (/[?#]/.test(entry)) throw new ConfigError(at, 'must be a FHIR base URL without a query or fragment', file);
    const key = baseUrlKey(entry);
    const same = seen.get(key);
    if (same) throw new ConfigError(at, `names the same FHIR base as ${same}`, file);
    seen.set(key, at);
    return entry.replace(/\/+$/, '');
  });
}

/** FHIR2's servlet path on an OpenMRS webapp, and the REST API's beside it (same webapp, same context path). */
const FHIR2_PATH = '/ws/fhir2/R4';
const REST_PATH = '/ws/rest/v1';

/**
 * `openmrs.restUrl` as given (checked as any URL the bridge calls), or derived from baseUrl: both APIs are
 * servlets of the one OpenMRS webapp, so `…/openmrs/ws/fhir2/R4` has its REST API at `…/openmrs/ws/rest/v1`.
 * A baseUrl of another shape (a proxy that maps FHIR2 elsewhere) says nothing of where REST is: given then.
 */
function openmrsRestUrl(source: SourceSettings, path: string, file?: string): string {
  const given = source.openmrs?.restUrl;
  if (given !== undefined) {
    checkUrl(given, `${path}.restUrl`, file);
    if (/[?#]/.test(given))
      throw new ConfigError(`${path}.restUrl`, 'must be the REST API root, without a query or fragment', file);
    return given.replace(/\/+$/, '');
  }
  const url = new URL(source.baseUrl);
  const base = url.pathname.replace(/\/+$/, '');
  if (url.search || url.hash || !base.endsWith(FHIR2_PATH)) {
    throw new ConfigError(
      `${path}.restUrl`,
      `is required: baseUrl does not end in ${FHIR2_PATH}, so where the OpenMRS REST API is cannot be told (e.g. https://emr.example.org/openmrs${REST_PATH})`,
      file,
    );
  }
  url.pathname = `${base.slice(0, -FHIR2_PATH.length)}${REST_PATH}`;
  return url.toString();
}

/**
 * A URL the bridge calls must parse, and must not carry credentials: fetch refuses such URLs, so every
 * call failed as a "network error", and the secret would sit in a URL that may be logged.
 */
function checkUrl(value: string | undefined, path: string, file?: string): void {
  if (value === undefined) return;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(path, 'is not a valid URL', file);
  }
  if (url.username || url.password) {
    throw new ConfigError(path, 'must not carry credentials (user:password@): give them under auth', file);
  }
}

/**
 * The DHIS2 client appends `/api/<path>` to the server's root (taking it with or without `/api`). A
 * versioned API path (`…/api/41`) would be called as `…/api/41/api/system/info`: every call answered 404,
 * and doctor could only say so.
 */
function checkDhis2BaseUrl(value: string, path: string, file?: string): void {
  const version = /\/api\/(\d+)\/*$/.exec(new URL(value).pathname);
  if (version) {
    throw new ConfigError(
      path,
      `ends in a versioned API path (/api/${version[1]}): give the DHIS2 server's root, with or without /api (e.g. https://dhis2.example.org or https://dhis2.example.org/api); the bridge chooses the API paths itself`,
      file,
    );
  }
}

/**
 * A mapping is a name of the package's mappings/ folder (`birth.fhir`) or a path to a site's own file
 * (`./mappings/birth.yaml`, relative to the config file), made absolute here so every consumer reads the
 * same file. A typo is found here, with its key path.
 */
function resolveMappings(entries: string[], path: string, file?: string): string[] {
  return entries.map((entry, j) => {
    if (isMappingPath(entry)) {
      const absolute = resolve(file ? dirname(file) : process.cwd(), entry);
      if (!existsSync(absolute)) throw new ConfigError(`${path}[${j}]`, `no mapping file at ${absolute}`, file);
      return absolute;
    }
    if (existsSync(shippedMappingFile(entry))) return entry;
    // A bare name is a shipped mapping's; a site's file beside the config needs ./ to be read as a path.
    if (/\.ya?ml$/i.test(entry) && existsSync(resolve(file ? dirname(file) : process.cwd(), entry))) {
      throw new ConfigError(
        `${path}[${j}]`,
        `no mapping named "${entry}"; for the file ${entry} beside the configuration, give its path: ./${entry}`,
        file,
      );
    }
    const shipped = readdirSync(packagePaths.mappings)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => f.replace(/\.yaml$/, ''));
    // A copy's `id:` names it in the ledger and in results, not in `mappings:`: one whose id this is
    // is pointed to by its path.
    const copies = filesWithMappingId(entry, file ? dirname(file) : process.cwd());
    const hint = copies.length
      ? `${copies.join(', ')} ${copies.length === 1 ? 'has' : 'have'} that id: name it by its path, ${copies[0]} (a mapping of your own is named by its path, not its id)`
      : 'a mapping of your own is named by its path, not its id: e.g. ./mappings/birth.yaml';
    throw new ConfigError(
      `${path}[${j}]`,
      `no mapping named "${entry}" (there are: ${shipped.join(', ')}); ${hint}`,
      file,
    );
  });
}

/** The YAML files beside the configuration and in its mappings/ folder whose `id:` is `id` (`./…` paths). */
function filesWithMappingId(id: string, base: string): string[] {
  const found: string[] = [];
  for (const folder of ['.', './mappings']) {
    let names: string[];
    try {
      names = readdirSync(resolve(base, folder)).filter((n) => /\.ya?ml$/i.test(n));
    } catch {
      continue;
    }
    for (const name of names.sort().slice(0, 100)) {
      const relative = `${folder}/${name}`;
      try {
        const absolute = resolve(base, relative);
        if (statSync(absolute).size > 1_000_000) continue;
        const named = /^id:[ \t]*['"]?([^'"\s#]+)/m.exec(readFileSync(absolute, 'utf8'))?.[1];
        if (named === id) found.push(relative);
      } catch {
        // unreadable: not the file meant
      }
    }
  }
  return found;
}

/**
 * The poll's watermark is each tracked entity's `updatedAt` and its key the `trackedEntity` uid: a fields
 * filter without them would keep the watermark still and hide every later change, quietly. With a
 * `trackedEntityType`, the poller tells each listed record's type itself (DHIS2 will not filter by programme
 * and type at once), so the list must say it.
 */
function checkDhis2Fields(fields: string, trackedEntityType: string | undefined, path: string, file?: string): void {
  let depth = 0;
  let name = '';
  const top: string[] = [];
  for (const ch of `${fields},`) {
    if (ch === '[' || ch === '(') depth++;
    else if (ch === ']' || ch === ')') depth--;
    else if (ch === ',' && depth === 0) {
      top.push(name.trim());
      name = '';
    } else if (depth === 0) name += ch;
  }
  if (top.includes('*') || top.includes(':all')) return;
  const missing = ['trackedEntity', 'updatedAt', 'attributes', 'enrollments'].filter((f) => !top.includes(f));
  if (missing.length > 0) {
    throw new ConfigError(
      path,
      `must include ${missing.join(', ')} (or be *): the poller and the mappings need them`,
      file,
    );
  }
  if (trackedEntityType !== undefined && !top.includes('trackedEntityType'))
    throw new ConfigError(
      path,
      `must include trackedEntityType (or be *), as ${path.replace(/fields$/, 'trackedEntityType')} is set: the poller keeps only the records of that type, since DHIS2 will not filter a programme's list by type`,
      file,
    );
}

function checkTimeZone(zone: string, path: string, file?: string): void {
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat('en-US', { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    throw new ConfigError(path, `"${zone}" is not an IANA time zone (e.g. Africa/Lusaka, Asia/Dhaka, UTC)`, file);
  }
  // ICU also takes old abbreviations and links, some far from what they seem: "BST" is Asia/Dhaka
  // (+06), not British Summer Time; "IST" is India. Etc/GMT+3 is three hours *behind* UTC (POSIX signs).
  // Either would put births near midnight on the wrong day, so only Area/Location names and UTC pass.
  if (zone !== 'UTC' && (!zone.includes('/') || /^Etc\/GMT[+-]/i.test(zone))) {
    throw new ConfigError(
      path,
      `"${zone}" is ambiguous (ICU reads it as ${resolved}): give the zone's Area/Location name, e.g. Africa/Lusaka, Europe/London, or UTC`,
      file,
    );
  }
}

// A date, or a date-time with an optional zone (DHIS2 reads a zoneless one as its server's local time).
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$/;

/** Whether a `poll.since` / `sync --since` value names its zone (Z or an offset); a date alone does not. */
export function sinceHasZone(value: string): boolean {
  return /T.*(?:[zZ]|[+-]\d{2}:\d{2})$/.test(value);
}

/** A start as `poll.since` and `sync --since` take it: an ISO 8601 date, or date-time with or without a zone. */
export function isSinceValue(value: string): boolean {
  return ISO_DATE_TIME.test(value) && !Number.isNaN(Date.parse(value));
}

/**
 * Why a start (`poll.since`, `sync --since`) cannot be taken for a DHIS2 source, or undefined. DHIS2
 * compares its own local times, whose zone the bridge does not know: a zoned date would be read as that
 * wall time, hours off the period meant (a server at UTC-5 would start 5 hours late).
 */
export function dhis2SinceProblem(value: string): string | undefined {
  return sinceHasZone(value)
    ? "is DHIS2's local time: give it without a zone (2026-01-31T00:00:00, on DHIS2's clock); a zone would put the start hours off"
    : undefined;
}

function checkFirstSync(poll: PollSettings, kind: SourceSettings['kind'], path: string, file?: string): void {
  if (poll.since !== undefined && poll.sinceDays !== undefined) {
    throw new ConfigError(`${path}.sinceDays`, 'give either since or sinceDays, not both', file);
  }
  // Unchecked, a typo here fails every poll (FHIR) or silently starts from the beginning (DHIS2).
  if (poll.since !== undefined && !isSinceValue(poll.since)) {
    throw new ConfigError(
      `${path}.since`,
      'must be an ISO 8601 date or date-time (2026-01-31, 2026-01-31T00:00:00Z)',
      file,
    );
  }
  const problem = poll.since !== undefined && kind === 'dhis2' ? dhis2SinceProblem(poll.since) : undefined;
  if (problem) throw new ConfigError(`${path}.since`, problem, file);
}

export interface LoadConfigOptions {
  /** YAML text; when absent, `file` is read. */
  text?: string;
  file?: string;
  env?: Env;
  /**
   * Which secrets are read: 'all' (the default) for a command that calls OpenCRVS or serves;
   * 'outbound' (those the bridge presents, to OpenCRVS and the sources: not the admin token nor the
   * subscriptions' secrets, which only a listener checks) for a pass that opens no listener (sync), and for
   * doctor's checks when a full load fails (none of them uses a secret presented to the bridge);
   * 'sources' (only those under sources[]) for one that calls the sources alone; 'none' for one that
   * reads the ledger only. A secret file being rotated (empty for a moment, or for an incident's
   * length) or one this user may not read then does not stop the diagnostic commands, nor a secret
   * written as `${NAME}` whose variable is not set in this shell. The `…File` keys are checked as always
   * (given, naming a file, not beside the plain key); only the files are not read.
   */
  secretFiles?: SecretFileReading;
}

/**
 * The YAML library's own message quotes the text it choked on, which in a configuration is often a
 * secret written inline (a generated password starting with `*`, `|`, `>` or `!`): only the place and
 * the kind of problem are said, with what usually causes it.
 */
function yamlError(err: unknown, file: string | undefined, text?: string): ConfigError {
  const at = err instanceof YAMLError ? err.linePos?.[0] : undefined;
  const code = err instanceof YAMLError ? err.code : undefined;
  const hint = envReferenceHint(err, text) ?? YAML_HINTS[code ?? ''] ?? QUOTE_HINT;
  return new ConfigError(
    at ? `line ${at.line}, column ${at.col}` : '',
    `invalid YAML${code ? ` (${code})` : ''}: ${hint} (what the line says is not repeated here, since it may be a secret)`,
    file,
  );
}

/**
 * `token: ${DHIS2_PAT}` is a plain value in a block, but inside `{ }` or `[ ]` its `{` opens a mapping, and
 * the YAML library stops at that brace: the general quoting hint does not say that `${` is the cause. Only
 * the reference's name is repeated (an environment variable's name, not its value).
 */
function envReferenceHint(err: unknown, text: string | undefined): string | undefined {
  const offset = err instanceof YAMLError ? err.pos[0] : undefined;
  if (offset === undefined || !text || text[offset - 1] !== '$' || text[offset] !== '{') return undefined;
  const name = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}/.exec(text.slice(offset - 1, offset + 200))?.[1];
  const reference = `\${${name ?? 'NAME'}}`;
  return `a value holding an environment reference inside { } or [ ] must be in quotes, e.g. "${reference}"`;
}

const QUOTE_HINT = "put in quotes a value that begins with * & ! | > % @ or a backquote, or that holds ': ' or ' #'";
/** What usually causes the YAML library's error codes that quoting does not cure. */
const YAML_HINTS: Record<string, string> = {
  DUPLICATE_KEY: 'a key is given twice in the same block: keep one',
  BAD_INDENT:
    'the indentation does not match the lines around it (indent with spaces, the same amount at each level), or a [ or { is not closed',
  BLOCK_AS_IMPLICIT_KEY: 'a line is indented more or less than the keys beside it',
  MULTILINE_IMPLICIT_KEY: 'a line is indented more or less than the keys beside it',
  TAB_AS_INDENT: 'a tab is used to indent: YAML indents with spaces',
  MISSING_CHAR: 'a bracket, brace or quote is not closed',
};

function unresolvedAlias(doc: Document, text: string): YAMLError | undefined {
  let found: YAMLError | undefined;
  visit(doc, {
    Alias(_key, node) {
      if (found || node.resolve(doc) !== undefined) return;
      const offset = node.range?.[0] ?? 0;
      const before = text.slice(0, offset);
      const line = before.split('\n').length;
      const col = offset - before.lastIndexOf('\n');
      found = new YAMLParseError([offset, offset + 1], 'BAD_ALIAS', 'alias without an anchor');
      found.linePos = [{ line, col }];
      return visit.BREAK;
    },
  });
  return found;
}

/**
 * Loads, interpolates, validates and normalises a configuration. Every problem is a ConfigError
 * naming the key path, so start-up can stop with a message an engineer can act on.
 */
export function loadConfig(options: LoadConfigOptions): BridgeConfig {
  const { file } = options;
  const env = options.env ?? {};
  let text = options.text;
  if (text === undefined) {
    if (!file) throw new ConfigError('', 'no configuration file given (--config or BRIDGE_CONFIG)');
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      // `docker run -v ./bridge.yaml:/config/bridge.yaml` with no ./bridge.yaml on the host mounts a folder
      // Docker created in its place: the cause is on the host, not in the container.
      const folder =
        code === 'EISDIR'
          ? ': it is a folder, not a file. In a container that is what Docker mounts when the host file given to -v (or a compose volume) does not exist: it creates an empty folder in its place. Check the host path, remove the folder Docker made there, and mount the configuration file'
          : '';
      throw new ConfigError('', `cannot read the file (${code})${folder}`, file);
    }
  }
  const doc = parseDocument(text);
  // An unknown tag (`clientSecret: !abc…`) would read as an empty value: a mistake, said as one.
  const problem = doc.errors[0] ?? doc.warnings.find((w) => w.code === 'TAG_RESOLVE_FAILED');
  if (problem) throw yamlError(problem, file, text);
  let parsed: unknown;
  try {
    parsed = doc.toJS();
  } catch (err) {
    // An alias without its anchor (`secret: *abc…`) fails only here, as a plain ReferenceError without
    // a place: the place is the first alias that resolves to nothing.
    throw yamlError(unresolvedAlias(doc, text) ?? err, file);
  }
  const fromEnv = new Set<string>();
  const origins: EnvOrigins = new Map();
  const reading = options.secretFiles ?? 'all';
  const raw = interpolate(parsed ?? {}, env, '', file, fromEnv, origins, reading);
  refuseBlanks(raw, '', file);
  resolveSecretFiles(raw, '', file ? dirname(resolve(file)) : process.cwd(), file, reading);
  const { ok, errors } = validateSchema(raw, fromEnv);
  if (!ok) {
    // An unknown key first: a misspelt key ('opencrv:') is usually why a required one is missing.
    const described = errors
      .map((error) => {
        const d = describeAjvError(error, raw);
        const origin = envOrigin(origins, d.path, atPointer(raw, error.instancePath));
        return origin && d.path === pointerToPath(error.instancePath) ? { ...d, problem: `${d.problem}${origin}` } : d;
      })
      .sort((a, b) => Number(b.problem.startsWith('unknown key')) - Number(a.problem.startsWith('unknown key')));
    const unique = described.filter(
      (d, i) => described.findIndex((e) => e.path === d.path && e.problem === d.problem) === i,
    );
    const [first, ...rest] = unique;
    const shown = rest.slice(0, MAX_PROBLEMS_SHOWN - 1).map((d) => `${d.path || '(root)'}: ${d.problem}`);
    const more = rest.length > shown.length ? `; and ${rest.length - shown.length} more` : '';
    const also = shown.length > 0 ? ` (also ${shown.join('; ')}${more})` : '';
    throw new ConfigError(first?.path ?? '', `${first?.problem ?? 'invalid'}${also}`, file);
  }
  const config = raw as BridgeConfig;
  try {
    checkSemantics(config, file);
  } catch (err) {
    // The file shows `${NAME}` where the refused value was: the variable is what to change.
    const origin = err instanceof ConfigError ? envOrigin(origins, err.path, undefined) : '';
    if (origin && err instanceof ConfigError) throw new ConfigError(err.path, `${err.problem}${origin}`, err.file);
    throw err;
  }
  resolveStorePath(config, file);
  return config;
}

/**
 * A key with no value (`enabled:`, or a Helm template whose value was missing) is refused by name, saying
 * what to do, rather than as a value of the wrong type.
 */
function refuseBlanks(value: unknown, path: string, file?: string): void {
  if (value === null) throw new ConfigError(path, 'has no value: give one, or leave the key out for its default', file);
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) refuseBlanks(item, `${path}[${i}]`, file);
  } else if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) refuseBlanks(item, path ? `${path}.${key}` : key, file);
  }
}

/** Builds a config from an object (tests, the demo) through the same validation. */
export function configFromObject(value: unknown, env: Env = {}): BridgeConfig {
  return loadConfig({ text: JSON.stringify(value), env });
}
