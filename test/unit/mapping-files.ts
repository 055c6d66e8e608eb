// Mapping files written for a test, in a temporary folder, and the load error one of them gives.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadMappings, MappingLoadError } from '../../src/mapping/index.js';

export function mappingFiles(prefix: string): {
  write(text: string): string;
  loadError(text: string): MappingLoadError;
} {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  let n = 0;
  const write = (text: string): string => {
    n += 1;
    const file = join(dir, `m${n}.yaml`);
    writeFileSync(file, text);
    return file;
  };
  const loadError = (text: string): MappingLoadError => {
    const file = write(text);
    try {
      loadMappings({ files: [file] });
    } catch (err) {
      if (err instanceof MappingLoadError) {
        assert.equal(err.file, file);
        return err;
      }
      throw err;
    }
    assert.fail('expected a MappingLoadError');
  };
  return { write, loadError };
}

/** The start of a birth mapping whose trigger takes any Patient: a test adds what it is about. */
export const ANY_PATIENT_BIRTH = `eventType: birth
source: fhir
subject: { type: Patient }
trigger:
  when:
    - evidence: any patient
      if: '%subject.exists()'
`;
