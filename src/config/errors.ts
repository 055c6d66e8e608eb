/**
 * A configuration problem. `path` is the dotted key path (e.g. `sources[0].baseUrl`), or empty for a problem
 * with the file as a whole (it cannot be read, or none was given), which the message then names alone.
 */
export class ConfigError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
    readonly file?: string,
  ) {
    super(`${file ? `${file}: ` : ''}${path ? `${path}: ` : ''}${problem}`);
    this.name = 'ConfigError';
  }
}
