import type { ListEntry, ListResult } from './types';

/** A page from up to limit + 1 entries in path order: the extra one only says that another page follows. */
export function pageOf(entries: ListEntry[], limit: number): ListResult {
  if (entries.length <= limit) { return { entries }; }
  const kept = entries.slice(0, limit);
  return { entries: kept, next: kept[kept.length - 1]?.path };
}
