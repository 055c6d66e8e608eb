// Whether the configuration and mapping files on disk now would start, as serve's start reads them
// (config/on-disk.ts). Compiling every mapping takes tens to hundreds of milliseconds: serve runs this on a
// worker thread (config/on-disk-worker.ts) so that acknowledgements and deliveries do not wait on it. The
// answer is plain data, for postMessage.
import { resolve } from 'node:path';
import { loadMappings, sourceMappingOptions } from '../mapping/load.js';
import { MappingLoadError } from '../mapping/yaml-source.js';
import { checkSourceMappings } from '../sources/overlap.js';
import { ConfigError } from './errors.js';
import { type Env, loadConfig } from './load.js';
import { mappingFilesNamed } from './on-disk.js';
import { mappingFile } from './paths.js';
import type { BridgeConfig } from './types.js';

/** The files a configuration makes serve read: itself and the mapping files its sources name. */
export function namedFiles(configPath: string, config: BridgeConfig): string[] {
  const mappings = config.sources.flatMap((s) => s.mappings.map((entry) => mappingFile(entry)));
  return [...new Set([resolve(configPath), ...mappings])];
}

export interface FilesVerdict {
  /** Why the files would not load (file, key path, problem): never a value from them. */
  problem?: string;
  /** The files the configuration names now, or undefined when it could not be read that far. */
  files?: string[];
  /** The configured source ids, when everything loaded: their history is the ledger's to check. */
  sourceIds?: string[];
}

/**
 * Loads the configuration, each source's mappings and their overlap, as serve does before it opens
 * anything; applies nothing. The ledger is not opened here: the caller checks the source ids against it.
 * Throws what is not a configuration or mapping problem.
 */
export function verifyFilesOnDisk(path: string, env: Env): FilesVerdict {
  let files: string[] | undefined;
  try {
    const config = loadConfig({ file: path, env });
    files = namedFiles(path, config);
    const sets = config.sources.map((source) =>
      loadMappings(sourceMappingOptions(config.opencrvs, config.routing, source)),
    );
    checkSourceMappings(config, (i) => sets[i]?.mappings);
    return { files, sourceIds: config.sources.map((s) => s.id) };
  } catch (err) {
    // A configuration that does not load still names files: the one it points at may be on its way.
    if (err instanceof ConfigError) return { problem: err.message, files: files ?? mappingFilesNamed(path) };
    if (err instanceof MappingLoadError) return { problem: err.message, files };
    throw err;
  }
}
