import type Database from 'better-sqlite3';

/**
 * The on-disk layout of the SQLite store.
 *
 * - `log` holds every write in revision order. A delete is a row of its own (a tombstone,
 *   `deleted = 1`, no value); `prev_revision` points at the key's previous write so a watch
 *   can replay the previous value. Compaction removes rows no longer needed (see
 *   `SqliteStore.compact`).
 * - `current` holds the live keys only, so get and list at the latest revision never look
 *   at history.
 * - `meta` holds the compacted revision and, as of the last compaction, the revision
 *   counter.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS log (
  revision INTEGER PRIMARY KEY,
  key TEXT NOT NULL,
  value TEXT,
  create_revision INTEGER NOT NULL,
  prev_revision INTEGER,
  deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS log_key_revision ON log (key, revision);
CREATE TABLE IF NOT EXISTS current (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  create_revision INTEGER NOT NULL,
  mod_revision INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
`;

/**
 * Sets the connection up and creates the tables if needed.
 *
 * WAL lets readers run beside the writer and turns each commit into an append. With WAL,
 * `synchronous = NORMAL` syncs at checkpoints instead of at every commit: a crash of the
 * process loses nothing, a power cut or OS crash can lose the last commits but never
 * corrupts the file. That trade is what makes thousands of writes per second possible;
 * etcd makes the opposite one (fsync per commit) and is the backend for stricter needs.
 */
export function applySchema(db: Database.Database): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  // A checkpoint copies the WAL's pages into the file and syncs it. At the default (every
  // 1000 pages) checkpoints double the cost of a write under a steady stream of writes;
  // every 10000 pages (about 40 MiB of WAL) a hot page is copied once instead of ten times.
  db.pragma('wal_autocheckpoint = 10000');
  // 64 MiB of page cache (default 2 MiB) keeps the inner pages of the key indexes of a
  // store of hundreds of thousands of objects in memory.
  db.pragma('cache_size = -65536');
  // Another process (a backup, the sqlite3 shell) may hold the lock for a moment.
  db.pragma('busy_timeout = 5000');
  db.exec(SCHEMA);
}

/** Prefix-range SQL for a column: `key >= @lower` or `key > @lower`, then `< @upper`. */
function range(column: string, exclusive: boolean, bounded: boolean): string {
  const lower = `${column} ${exclusive ? '>' : '>='} @lower`;
  return bounded ? `${lower} AND ${column} < @upper` : lower;
}

const KV_COLUMNS = 'key, value, create_revision AS createRevision';

/** Statements for one shape of key range; chosen per call by `RangeStatements.pick`. */
interface RangeShape {
  listCurrent: Database.Statement;
  listAtRevision: Database.Statement;
  history: Database.Statement;
}

/**
 * The range queries, prepared once for each of the four range shapes (inclusive or
 * exclusive lower bound, with or without an upper bound). Separate statements rather than
 * `(@upper IS NULL OR ...)` so that SQLite can always use the index for the range.
 */
export class RangeStatements {
  private readonly shapes: RangeShape[] = [];

  constructor(db: Database.Database) {
    for (const exclusive of [false, true]) {
      for (const bounded of [false, true]) {
        this.shapes.push(prepareShape(db, exclusive, bounded));
      }
    }
  }

  pick(exclusive: boolean, bounded: boolean): RangeShape {
    return this.shapes[(exclusive ? 2 : 0) + (bounded ? 1 : 0)]!;
  }
}

function prepareShape(db: Database.Database, exclusive: boolean, bounded: boolean): RangeShape {
  const listCurrent = db.prepare(
    `SELECT ${KV_COLUMNS}, mod_revision AS modRevision FROM current
     WHERE ${range('key', exclusive, bounded)} ORDER BY key LIMIT @limit`,
  );
  // The newest write of each key at or before @revision, unless that write is a delete.
  const listAtRevision = db.prepare(
    `SELECT ${KV_COLUMNS}, revision AS modRevision FROM log AS l
     WHERE ${range('l.key', exclusive, bounded)} AND l.revision <= @revision
       AND l.deleted = 0
       AND NOT EXISTS (SELECT 1 FROM log AS n
         WHERE n.key = l.key AND n.revision > l.revision AND n.revision <= @revision)
     ORDER BY l.key LIMIT @limit`,
  );
  // `+l.key` keeps SQLite on the revision order of the table instead of the key index,
  // so each page reads forward from the cursor and no page sorts the whole history.
  const history = db.prepare(
    `SELECT l.revision, l.key, l.value, l.create_revision AS createRevision, l.deleted,
       p.revision AS prevRevision, p.value AS prevValue
     FROM log AS l LEFT JOIN log AS p ON p.revision = l.prev_revision
     WHERE l.revision > @after AND ${range('+l.key', exclusive, bounded)}
     ORDER BY l.revision LIMIT @limit`,
  );
  return { listCurrent, listAtRevision, history };
}

/** Row shape of the `history` statement. */
export interface HistoryRow {
  revision: number;
  key: string;
  value: string | null;
  createRevision: number;
  deleted: number;
  prevRevision: number | null;
  prevValue: string | null;
}

/** The single-purpose statements of the write path, compaction and startup. */
export function prepareStatements(db: Database.Database) {
  return {
    get: db.prepare(`SELECT ${KV_COLUMNS}, mod_revision AS modRevision FROM current WHERE key = ?`),
    insertLog: db.prepare(
      `INSERT INTO log (revision, key, value, create_revision, prev_revision, deleted)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    insertCurrent: db.prepare(
      'INSERT INTO current (key, value, create_revision, mod_revision) VALUES (?, ?, ?, ?)',
    ),
    updateCurrent: db.prepare('UPDATE current SET value = ?, mod_revision = ? WHERE key = ?'),
    deleteCurrent: db.prepare('DELETE FROM current WHERE key = ?'),
    maxRevision: db.prepare('SELECT MAX(revision) AS revision FROM log').pluck(),
    getMeta: db.prepare('SELECT value FROM meta WHERE name = ?').pluck(),
    setMeta: db.prepare(
      `INSERT INTO meta (name, value) VALUES (?, ?)
       ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
    ),
    // The first revision of the next compaction chunk: `chunk` rows on from @from.
    chunkEnd: db
      .prepare('SELECT revision FROM log WHERE revision >= ? ORDER BY revision LIMIT 1 OFFSET ?')
      .pluck(),
    minRevision: db.prepare('SELECT MIN(revision) FROM log').pluck(),
    // A row before @until goes if it is a delete, or if a newer write of the same key
    // before @until replaces it; the newest write of each live key as of @until stays.
    prune: db.prepare(
      `DELETE FROM log WHERE revision >= @from AND revision < @to AND revision < @until
       AND (deleted = 1 OR EXISTS (SELECT 1 FROM log AS n
         WHERE n.key = log.key AND n.revision > log.revision AND n.revision < @until))`,
    ),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
