import { createRequire } from 'node:module';

// Address.country as EMRs write it → ISO 3166 alpha-3, which OpenCRVS needs. OpenMRS keeps the country as
// free text ("Uganda"), others an alpha-2 code ("UG"). The codes and English names come from the
// i18n-iso-countries package's data files (MIT); only English is read, not its 78 locales.
const require = createRequire(import.meta.url);

type Index = { alpha2: Map<string, string>; names: Map<string, string | null> };
let index: Index | undefined;

/** Case, diacritics, punctuation and spacing do not tell two names apart: "Côte d’Ivoire" = "cote d'ivoire". */
export function countryKey(name: string): string {
  return name
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

function load(): Index {
  const codes = require('i18n-iso-countries/codes.json') as [string, string, string][];
  const en = require('i18n-iso-countries/langs/en.json') as { countries: Record<string, string | string[]> };
  const alpha2 = new Map(codes.map(([a2, a3]) => [a2, a3]));
  // A name two countries share ("Congo": COD and COG) names neither: null, left out as unknown.
  const names = new Map<string, string | null>();
  for (const [a2, value] of Object.entries(en.countries)) {
    const a3 = alpha2.get(a2);
    if (!a3) continue;
    for (const name of Array.isArray(value) ? value : [value]) {
      const key = countryKey(name);
      const seen = names.get(key);
      names.set(key, seen === undefined || seen === a3 ? a3 : null);
    }
  }
  return { alpha2, names };
}

/**
 * The alpha-3 code of a country given as an alpha-2 code or an English short name, or undefined. The
 * form's own country is also known by the name of the OpenCRVS country (`farajaland` → `FAR`), as no
 * ISO list has Farajaland.
 */
export function alpha3Country(raw: string, home?: { code: string; name: string }): string | undefined {
  index ??= load();
  if (/^[A-Za-z]{2}$/.test(raw)) {
    const code = index.alpha2.get(raw.toUpperCase());
    if (code) return code;
  }
  const key = countryKey(raw);
  if (home && key === countryKey(home.name)) return home.code;
  return index.names.get(key) ?? undefined;
}
