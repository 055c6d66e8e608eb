// The email addresses OpenCRVS accepts in an EMAIL field: core checks NOTIFY values with zod's default email
// pattern (`z.email()` in v2.0, zod 4; v1.9's zod 3 `.email()` is the same pattern). ajv's `format: 'email'`
// let `a@b.c` through to a NOTIFY that OpenCRVS then refused. One definition, for the bridge's check and
// for the OpenCRVS simulator (sandbox/ may import mapping/, not the reverse).
export const OPENCRVS_EMAIL_PATTERN =
  "^(?!\\.)(?!.*\\.\\.)([A-Za-z0-9_'+\\-.]*)[A-Za-z0-9_+-]@([A-Za-z0-9][A-Za-z0-9-]*\\.)+[A-Za-z]{2,}$";

export const OPENCRVS_EMAIL = new RegExp(OPENCRVS_EMAIL_PATTERN);

/** OpenCRVS's EmailField takes at most 255 characters (its default maxLength). */
export const EMAIL_MAX_LENGTH = 255;

export function isOpenCrvsEmail(value: unknown): boolean {
  return typeof value === 'string' && value.length <= EMAIL_MAX_LENGTH && OPENCRVS_EMAIL.test(value);
}
