/** The middle sample (the upper one of an even count): a benchmark's figure, steadier than a mean on a shared machine. */
export function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}
