/**
 * The files RocksDB keeps in a store's folder, as the checkpoint needs to know
 * them (names as RocksDB's filename.cc makes them). Pure: no I/O here.
 */

/** A table (SST) file of a store's current version. Table files never change once written. */
export interface LiveTable {
  name: string;
  size: number;
}

/**
 * The table files of the store's current version, from the `rocksdb.sstables`
 * property (RocksDB's Version::DebugString): one line per file,
 * ` <number>:<size>[<seqs>][<keys>](<refs>)`, under a `--- level N ---` header.
 * Only files the version holds are listed: never a compaction's output still
 * being written, which a folder listing would show.
 */
export function liveTables(sstablesProperty: string): LiveTable[] {
  const tables: LiveTable[] = [];
  for (const match of sstablesProperty.matchAll(/^ (\d+):(\d+)\[/gm)) {
    tables.push({ name: tableFileName(Number(match[1])), size: Number(match[2]) });
  }
  return tables;
}

export function tableFileName(fileNumber: number): string {
  return `${String(fileNumber).padStart(6, '0')}.sst`;
}

/** A write-ahead log: `000123.log` (the info logs are `LOG`, `LOG.old.…`, and are not needed). */
export function isWriteAheadLog(name: string): boolean {
  return /^\d+\.log$/.test(name);
}

/** The MANIFEST that CURRENT names (CURRENT holds `MANIFEST-000123\n`), or undefined if it names none. */
export function manifestNamedBy(current: string): string | undefined {
  const name = current.trim();
  return /^MANIFEST-\d+$/.test(name) ? name : undefined;
}

/** The newest of the OPTIONS-<n> files in a listing (RocksDB keeps the last two), or undefined. */
export function newestOptionsFile(names: readonly string[]): string | undefined {
  let newest: { name: string; number: number } | undefined;
  for (const name of names) {
    const match = /^OPTIONS-(\d+)$/.exec(name);
    if (match && (!newest || Number(match[1]) > newest.number)) newest = { name, number: Number(match[1]) };
  }
  return newest?.name;
}
