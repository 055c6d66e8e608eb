// A Map kept to a bound (a pass's cache, what a process remembers): when full, the oldest entry goes (a Map
// iterates in insertion order), so more than the bound keeps its recent entries rather than none. Here, not
// under one layer, so sources, delivery and http use it without importing each other.

/**
 * Sets `key` as the newest entry of `map`, dropping the oldest one first when `map` holds `max`; returns
 * the key dropped, if one was (a caller that keeps a copy elsewhere forgets it there too).
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): K | undefined {
  map.delete(key);
  let dropped: K | undefined;
  if (map.size >= max) {
    const oldest = map.keys().next();
    if (!oldest.done) {
      dropped = oldest.value;
      map.delete(dropped);
    }
  }
  map.set(key, value);
  return dropped;
}
