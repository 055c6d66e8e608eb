// Top-level request body checks with zod-shaped issues: zod 4 wording for v2.0 (commons uses zod/v4)
// and zod 3 wording for v1.9. Only the keys the bridge's calls use are modelled.
import type { SimVersion } from './types.js';

type Kind = 'string' | 'record' | 'boolean';

export interface KeyRule {
  kind: Kind;
  required?: boolean;
  /** `null` allowed (zod `.nullish()`). */
  nullable?: boolean;
  /** The only accepted value (zod `z.literal(…).default(…)`: may be absent). */
  literal?: string;
}

export interface BodySchema {
  keys: Record<string, KeyRule>;
  /** v2.0 rejects unknown top-level keys; v1.9 drops them. */
  strict: boolean;
}

export interface ZodIssue {
  code: string;
  path: (string | number)[];
  message: string;
  [key: string]: unknown;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function matchesKind(kind: Kind, value: unknown): boolean {
  if (kind === 'record') return typeof value === 'object' && value !== null && !Array.isArray(value);
  return typeof value === kind;
}

function invalidType(version: SimVersion, path: string[], expected: string, value: unknown): ZodIssue {
  const received = typeName(value);
  if (version === '2.0') {
    return {
      expected,
      code: 'invalid_type',
      path,
      message: `Invalid input: expected ${expected}, received ${received}`,
    };
  }
  const expected3 = expected === 'record' ? 'object' : expected;
  const message = received === 'undefined' ? 'Required' : `Expected ${expected3}, received ${received}`;
  return { code: 'invalid_type', expected: expected3, received, path, message };
}

function invalidLiteral(version: SimVersion, path: string[], literal: string, value: unknown): ZodIssue {
  if (version === '2.0') {
    return { code: 'invalid_value', values: [literal], path, message: `Invalid input: expected "${literal}"` };
  }
  return {
    received: value,
    code: 'invalid_literal',
    expected: literal,
    path,
    message: `Invalid literal value, expected "${literal}"`,
  };
}

/** Checks a parsed JSON body; `value` holds only the schema's keys (what the handler may read). */
export function checkBody(body: unknown, schema: BodySchema, version: SimVersion) {
  const issues: ZodIssue[] = [];
  const value: Record<string, unknown> = {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    issues.push(invalidType(version, [], 'object', body));
    return { issues, value };
  }
  const input = body as Record<string, unknown>;
  for (const [key, rule] of Object.entries(schema.keys)) {
    const item = input[key];
    if (item === undefined) {
      if (rule.required) issues.push(invalidType(version, [key], rule.kind, item));
      continue;
    }
    if (item === null && rule.nullable) {
      value[key] = null;
      continue;
    }
    if (rule.literal !== undefined) {
      if (item !== rule.literal) issues.push(invalidLiteral(version, [key], rule.literal, item));
      else value[key] = item;
      continue;
    }
    if (matchesKind(rule.kind, item)) value[key] = item;
    else issues.push(invalidType(version, [key], rule.kind, item));
  }
  const unknown = Object.keys(input).filter((key) => !(key in schema.keys));
  if (schema.strict && unknown.length > 0) {
    const names = unknown.map((key) => `"${key}"`).join(', ');
    issues.push({
      code: 'unrecognized_keys',
      keys: unknown,
      path: [],
      message: `Unrecognized key${unknown.length > 1 ? 's' : ''}: ${names}`,
    });
  }
  return { issues, value };
}

/** Reads a checked key as a string (the schema guarantees the kind when present). */
export function str(value: Record<string, unknown>, key: string): string | undefined {
  const item = value[key];
  return typeof item === 'string' ? item : undefined;
}

export function rec(value: Record<string, unknown>, key: string): Record<string, unknown> | undefined {
  const item = value[key];
  return typeof item === 'object' && item !== null && !Array.isArray(item)
    ? (item as Record<string, unknown>)
    : undefined;
}
