// A Map used as a bounded cache for one pass: when full, the oldest entry goes (a Map iterates in
// insertion order), so a pass larger than the bound keeps its recent entries rather than none.

/** Sets `key` as the newest entry of `map`, dropping the oldest one first when `map` holds `max`. */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  if (map.size >= max) {
    const oldest = map.keys().next();
    if (!oldest.done) map.delete(oldest.value);
  }
  map.set(key, value);
}
