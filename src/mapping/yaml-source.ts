// A parsed YAML mapping file that can say on which line a key path is, for load errors people can act on.
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';

export type KeyPath = ReadonlyArray<string | number>;

/** A mapping file that does not load. `path` is the key path (e.g. `fields['child.name'].from`). */
export class MappingLoadError extends Error {
  constructor(
    readonly file: string,
    readonly path: string,
    readonly problem: string,
    readonly line?: number,
  ) {
    super(`${file}${line ? `:${line}` : ''}: ${path ? `${path}: ` : ''}${problem}`);
    this.name = 'MappingLoadError';
  }
}

/** `['fields', 'child.name', 'from', 0]` → `fields['child.name'].from[0]`. */
export function formatPath(path: KeyPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(part)) out += out ? `.${part}` : part;
    else out += `['${part}']`;
  }
  return out;
}

export class YamlSource {
  readonly data: unknown;
  private readonly lineCounter = new LineCounter();
  private readonly doc;

  constructor(
    readonly file: string,
    text: string,
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lineCounter, prettyErrors: false });
    const error = this.doc.errors[0];
    if (error) {
      const line = error.linePos?.[0]?.line ?? this.lineCounter.linePos(error.pos[0]).line;
      let message = error.message.split('\n')[0] ?? '';
      // The parser names neither the key nor where it first appears: a field id written twice, say.
      if (error.code === 'DUPLICATE_KEY') {
        const key = /^\s*['"]?([^'":]+)['"]?\s*:/.exec(text.split('\n')[line - 1] ?? '')?.[1]?.trim();
        const first = key === undefined ? -1 : text.split('\n').findIndex((l) => l.trim().startsWith(`${key}:`));
        if (key)
          message = `the key ${key} appears twice${first >= 0 && first + 1 !== line ? ` (first on line ${first + 1})` : ''}`;
      }
      throw new MappingLoadError(file, '', `not valid YAML: ${message}`, line);
    }
    this.data = this.doc.toJS();
  }

  /** The line of the deepest node along `path` (the key itself when the path ends on a key). */
  line(path: KeyPath): number | undefined {
    let node: unknown = this.doc.contents;
    let located: Node | undefined = isMap(node) || isSeq(node) ? (node as Node) : undefined;
    for (const part of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === part);
        if (!pair) break;
        located = (pair.key as Node) ?? located;
        node = pair.value;
      } else if (isSeq(node) && typeof part === 'number') {
        node = node.items[part];
        if (node && typeof node === 'object' && 'range' in node) located = node as Node;
        else break;
      } else {
        break;
      }
    }
    const offset = located?.range?.[0];
    return offset === undefined ? undefined : this.lineCounter.linePos(offset).line;
  }

  /**
   * The first code (a `codes` entry or a `valueMaps` key) that YAML read as something other than the text
   * written: unquoted, `01` is the number 1 and `0815` is 815, so the code set or value map would quietly
   * hold another code than the EMR's. `5916` or `false`, whose text is unchanged, are fine.
   */
  alteredCode(): MappingLoadError | undefined {
    const root = this.doc.contents;
    if (!isMap(root)) return undefined;
    const section = (name: string) => root.items.find((p) => isScalar(p.key) && p.key.value === name)?.value;
    const altered = (node: unknown, asKey: boolean): string | undefined => {
      if (!isScalar(node) || typeof node.value === 'string' || typeof node.source !== 'string') return undefined;
      // What the bridge would use: toJS() turns a null key into '' and any other key or entry into String().
      const read = asKey && node.value === null ? '' : String(node.value);
      return node.source === read ? undefined : read;
    };
    const problem = (node: Node & { source?: string }, read: string, path: KeyPath) => {
      const written = String(node.source);
      const line = node.range ? this.lineCounter.linePos(node.range[0]).line : undefined;
      return new MappingLoadError(
        this.file,
        formatPath(path),
        `YAML reads the unquoted ${written} as '${read}', not the code written: quote this code: '${written.replace(/'/g, "''")}'`,
        line,
      );
    };
    const codes = section('codes');
    if (isMap(codes)) {
      for (const pair of codes.items) {
        if (!isScalar(pair.key) || !isSeq(pair.value)) continue;
        for (const [i, item] of pair.value.items.entries()) {
          const read = altered(item, false);
          if (read !== undefined) return problem(item as Node, read, ['codes', String(pair.key.value), i]);
        }
      }
    }
    const valueMaps = section('valueMaps');
    if (isMap(valueMaps)) {
      for (const pair of valueMaps.items) {
        if (!isScalar(pair.key) || !isMap(pair.value)) continue;
        for (const entry of pair.value.items) {
          const read = altered(entry.key, true);
          const key = entry.key as Node & { source?: string };
          if (read !== undefined) return problem(key, read, ['valueMaps', String(pair.key.value), String(key.source)]);
        }
      }
    }
    return undefined;
  }

  error(path: KeyPath, problem: string): MappingLoadError {
    return new MappingLoadError(this.file, formatPath(path), problem, this.line(path));
  }
}
