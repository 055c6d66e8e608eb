/** A configuration problem. `path` is the dotted key path (e.g. `sources[0].baseUrl`). */
export class ConfigError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
    readonly file?: string,
  ) {
    super(`${file ? `${file}: ` : ''}${path || '(root)'}: ${problem}`);
    this.name = 'ConfigError';
  }
}
