export interface Migration {
  /** 1, 2, 3, …: applied in order, each once, recorded in schema_migrations. */
  version: number;
  name: string;
  sql: string;
}
