// A secret file rewritten as a Vault agent or the kubelet does: the new file written aside, then moved over
// the old one (config/secret-files.ts follows it).
import { renameSync, writeFileSync } from 'node:fs';

export function rotateSecretFile(file: string, value: string): void {
  writeFileSync(`${file}.new`, `${value}\n`);
  renameSync(`${file}.new`, file);
}
