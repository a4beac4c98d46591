import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import {
  assert,
  DEFAULT_TRANSACTION_LIMITS,
  failedPrecondition,
  LpError,
  parseTransactionLimits,
  SHARD_DATABASE_FILE_NAME,
  Status,
  validateShardMap,
  type ShardMapConfig,
  type TransactionLimits,
} from "@logplayer/common";
import { applyPartMutations, planBatch, type BatchPlan } from "@logplayer/delivery";
import type { Part } from "@logplayer/proto";
import type { IdentityUpdate, ShardIdentity } from "./identity";
import { checkpointMadeDurable, type CheckpointResult } from "./restorable";
import { withUnsafeTestMutation } from "./unsafe-test-mutation";

/** The SQLite file inside the data directory. */
export const DATABASE_FILE_NAME = SHARD_DATABASE_FILE_NAME;
/**
 * Bumped when the tables change shape; a newer file is refused, an older one
 * migrated on open (migrateSchema).
 *   1: kv WITHOUT ROWID.
 *   2: kv as a rowid table with a unique index on key. With 1 KB values a
 *      WITHOUT ROWID table holds ~3 rows per 4 KB leaf and every upsert
 *      rewrites (and often splits) a leaf full of values; a rowid table
 *      updates the row in place and the index only holds keys. An upsert of
 *      three 1 KB values cost 175 us as version 1 and 47 us as version 2
 *      (wall, 10,000 keys, WAL mode, synchronous=NORMAL).
 */
const SCHEMA_VERSION = 2n;
/**
 * Pages written to the WAL before SQLite checkpoints on its own, inside a
 * commit. SQLite's default of 1000 made every ~250th batch pay a checkpoint
 * with two fsyncs on the delivery path (apply cost 210 -> 140 us CPU per
 * 3-key part, and wall time halved, in a microbenchmark); 50000 pages (100 MB
 * of WAL with the default 2 KB pages; a shard at 1,000 txn/s over 3 shards
 * writes ~35 MB between two 5 s checkpoints) leaves checkpoints to the
 * shard's timer (--checkpoint-interval-ms) unless it falls far behind.
 */
export const DEFAULT_WAL_AUTOCHECKPOINT_PAGES = 50_000;
/**
 * SQLite page size of a new database (an existing one keeps its own). Every
 * commit writes each page it changed to the WAL in full, so with random-key
 * upserts of ~1 KB values a 4 KB page (three rows) wrote 4 KB per upsert and
 * 2 KB pages (one row) write half as much. At 1,000 txn/s of 10 KB over 3
 * shards that took the shards' WAL writes from ~40 to ~20 MB/s, the
 * LogStore's mean fsync from 1.6-1.7 to 1.3-1.4 ms on the same disk, and the
 * LogPlayer delay p50 from 0.73-0.87 to 0.59-0.75 ms (5 A/B pairs). Larger
 * values spill to overflow pages sooner, so workloads with bigger values may
 * prefer 4096 or more.
 */
export const DEFAULT_PAGE_BYTES = 2048;
/** SQLite's own bounds on page_size (a power of two). */
export const PAGE_BYTES_MIN = 512;
export const PAGE_BYTES_MAX = 65_536;

/**
 * SQLite's page cache per connection (PRAGMA cache_size), in bytes. It fills
 * as pages are read and written and then stays full: a shard's RSS rises by
 * about this much over its first minutes and levels (the soak allows for it).
 * 16 MiB is what better-sqlite3 builds SQLite with, made explicit.
 */
export const DEFAULT_SQLITE_CACHE_BYTES = 16 * 1024 * 1024;
export const SQLITE_CACHE_BYTES_MIN = 64 * 1024;

export interface ShardStoreOptions {
  readonly walAutocheckpointPages?: number | undefined;
  /** SQLite's page cache bound (PRAGMA cache_size, rounded down to KiB). */
  readonly cacheBytes?: number | undefined;
  /** Page size when the database is created; ignored for an existing one. */
  readonly pageBytes?: number | undefined;
}

/**
 * Rejected parts remembered for GetOutcome; the oldest is forgotten beyond
 * this many (its LSN then reads as "unknown", never as "applied").
 */
export const REJECTED_PARTS_KEPT_MAX = 10_000;

const KV_TABLE = "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)";
// rejected_parts needs no schema version: an older file simply gets the empty table.
const SCHEMA = `
  ${KV_TABLE};
  CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS rejected_parts (lsn INTEGER PRIMARY KEY, reason TEXT NOT NULL);
`;

/**
 * What became of one LSN on this shard. "applied" also covers an LSN that
 * had no part here; "rejected" means none of the part's mutations were
 * applied (see applyPartMutations); "pending" is above the applied LSN.
 */
export type PartOutcome =
  | { readonly kind: "applied" }
  | { readonly kind: "rejected"; readonly reason: string }
  | { readonly kind: "unknown" }
  | { readonly kind: "pending" };

/** A batch's plan plus the LSNs of the applied parts that were rejected as a whole. */
export type StoredBatchPlan = BatchPlan<Part> & { readonly rejectedLsns: readonly bigint[] };

export interface KeyValueItem {
  readonly key: string;
  readonly value: Buffer;
}

export interface ScanResult {
  readonly items: KeyValueItem[];
  /** More keys match after the last item returned. */
  readonly more: boolean;
}

/**
 * The shard's SQLite database: the key-value data, the applied LSN and the
 * shard's identity, in one file, so that the applied LSN always moves in the
 * same transaction as the data it describes.
 *
 * Durability: WAL mode with synchronous=NORMAL. A commit survives a process
 * crash (SIGKILL) but not necessarily a power loss; `durableLsn` is the
 * applied LSN as of the last successful checkpoint, which syncs the WAL.
 * The LogStore may trim only below every shard's durable LSN, so commits lost
 * to a power cut are re-delivered by the handshake (applied_lsn rolls back
 * with them).
 */
export class ShardStore {
  readonly #db: Database.Database;
  readonly #dataDir: string;
  readonly #statements: ReturnType<typeof prepareStatements>;
  readonly #applyBatchTransaction: (parts: readonly Part[]) => StoredBatchPlan;
  #appliedLsn: bigint;
  #durableLsn: bigint;
  #identity: ShardIdentity;
  /** Why the last apply failed for want of space; null once an apply commits. */
  #diskFull: string | null = null;
  #onDiskFull: (message: string | null) => void = () => undefined;

  private constructor(db: Database.Database, dataDir: string, shardId: number) {
    this.#db = db;
    this.#dataDir = dataDir;
    this.#statements = withUnsafeTestMutation(prepareStatements(db));
    // Built once: better-sqlite3's transaction() makes four wrappers and
    // defines five properties on each, too much to pay on every batch.
    this.#applyBatchTransaction = db.transaction((parts: readonly Part[]) => this.#applyBatchInTransaction(parts));
    this.#identity = this.#readOrCreateIdentity(shardId);
    this.#appliedLsn = this.#readAppliedLsn();
    this.#durableLsn = 0n;
  }

  /**
   * Opens (creating when absent) the shard database in `dataDir`. A file
   * that is not a usable shard database fails with FAILED_PRECONDITION and a
   * message naming the file. `shardId` is stored on first open; the caller
   * checks it against the stored one via `identity`.
   */
  static open(dataDir: string, shardId: number, options: ShardStoreOptions = {}): ShardStore {
    const walAutocheckpointPages = options.walAutocheckpointPages ?? DEFAULT_WAL_AUTOCHECKPOINT_PAGES;
    const pageBytes = options.pageBytes ?? DEFAULT_PAGE_BYTES;
    const cacheBytes = options.cacheBytes ?? DEFAULT_SQLITE_CACHE_BYTES;
    assert(
      Number.isInteger(cacheBytes) && cacheBytes >= SQLITE_CACHE_BYTES_MIN,
      `cacheBytes must be an integer >= ${SQLITE_CACHE_BYTES_MIN}`,
    );
    assert(Number.isInteger(walAutocheckpointPages) && walAutocheckpointPages >= 1, "walAutocheckpointPages must be a positive integer");
    assert(isValidPageBytes(pageBytes), `pageBytes ${pageBytes} is not a power of two in [${PAGE_BYTES_MIN}, ${PAGE_BYTES_MAX}]`);
    const file = path.join(dataDir, DATABASE_FILE_NAME);
    let db: Database.Database | undefined;
    try {
      fs.mkdirSync(dataDir, { recursive: true });
      db = new Database(file, { fileMustExist: false, timeout: 1000 });
      configureDatabase(db, walAutocheckpointPages, pageBytes, cacheBytes);
      migrateSchema(db);
      const store = new ShardStore(db, dataDir, shardId);
      store.checkpoint();
      return store;
    } catch (err: unknown) {
      db?.close();
      if (LpError.is(err)) throw err;
      const message = err instanceof Error ? err.message : String(err);
      throw failedPrecondition(`cannot open shard database ${file}: ${message}`);
    }
  }

  get dataDir(): string {
    return this.#dataDir;
  }

  get appliedLsn(): bigint {
    return this.#appliedLsn;
  }

  get isOpen(): boolean {
    return this.#db.open;
  }

  /** SQLite's WAL file beside the database (see syncWalAhead in start-shard.ts). */
  get walFile(): string {
    return `${this.#db.name}-wal`;
  }

  /** The applied LSN as of the last successful checkpoint (synced to disk). */
  get durableLsn(): bigint {
    return this.#durableLsn;
  }

  /** SQLite's page cache bound in bytes, as set (PRAGMA cache_size in KiB). */
  get cacheBytes(): number {
    return -(this.#db.pragma("cache_size", { simple: true }) as number) * 1024;
  }

  /** The database's page size (fixed when it was created). */
  get pageBytes(): number {
    return this.#db.pragma("page_size", { simple: true }) as number;
  }

  get identity(): ShardIdentity {
    return this.#identity;
  }

  /** Persists the parts of the identity learned from flags or a hello. */
  adoptIdentity(update: IdentityUpdate): void {
    const s = this.#statements;
    this.#db.transaction(() => {
      if (update.clusterId !== undefined) {
        assert(this.#identity.clusterId === "", "cluster id is already set");
        s.metaPut.run("cluster_id", update.clusterId);
      }
      if (update.shardMap !== undefined) {
        assert(this.#identity.shardMap === null, "shard map is already set");
        s.metaPut.run("shard_map", JSON.stringify(update.shardMap));
      }
      if (update.limits !== undefined) {
        assert(this.#identity.limits === null, "transaction limits are already set");
        s.metaPut.run("transaction_limits", JSON.stringify(update.limits));
      }
    })();
    this.#identity = {
      shardId: this.#identity.shardId,
      clusterId: update.clusterId ?? this.#identity.clusterId,
      shardMap: update.shardMap ?? this.#identity.shardMap,
      limits: update.limits ?? this.#identity.limits,
    };
  }

  /**
   * Applies a batch of parts in ONE SQLite transaction: the apply decision
   * (duplicate / apply / gap), the mutations of every part that follows on,
   * and the new applied LSN. Parts from the first gap on are not applied.
   * On any SQLite error the whole transaction rolls back and nothing changes.
   */
  applyBatch(parts: readonly Part[]): StoredBatchPlan {
    let plan: StoredBatchPlan;
    try {
      plan = this.#applyBatchTransaction(parts);
    } catch (err: unknown) {
      if (!isDiskFull(err)) throw err;
      // The transaction rolled back: nothing of the batch is applied, and the next attempt starts from the same applied LSN.
      this.#setDiskFull(`disk full: no space left for the shard database in ${this.#dataDir}; retrying as batches arrive`);
      throw new LpError(Status.RESOURCE_EXHAUSTED, `${this.#diskFull}; nothing of this batch was applied`);
    }
    this.#appliedLsn = plan.appliedLsnAfter;
    this.#setDiskFull(null);
    return plan;
  }

  /**
   * Non-null while the database's disk is full: the last apply failed with
   * SQLITE_FULL and rolled back. Cleared by the next apply that commits.
   */
  get diskFull(): string | null {
    return this.#diskFull;
  }

  /** Called on each change of `diskFull` (for the log and metrics). */
  onDiskFull(observer: (message: string | null) => void): void {
    this.#onDiskFull = observer;
  }

  #setDiskFull(message: string | null): void {
    if (message === this.#diskFull) return;
    this.#diskFull = message;
    this.#onDiskFull(message);
  }

  #applyBatchInTransaction(parts: readonly Part[]): StoredBatchPlan {
    const appliedLsnStored = this.#readAppliedLsn();
    assert(appliedLsnStored === this.#appliedLsn, `applied LSN in memory ${this.#appliedLsn} != stored ${appliedLsnStored}`);
    const batchPlan = planBatch(appliedLsnStored, parts);
    const rejectedLsns: bigint[] = [];
    for (const part of batchPlan.apply) {
      if (!this.#applyPart(part)) rejectedLsns.push(part.lsn);
    }
    if (batchPlan.apply.length > 0) {
      assert(batchPlan.appliedLsnAfter > appliedLsnStored, "applied LSN did not advance");
      this.#statements.metaPut.run("applied_lsn", batchPlan.appliedLsnAfter);
    }
    return { ...batchPlan, rejectedLsns };
  }

  /**
   * Writes one part's mutations, or, when the part breaks a limit at apply
   * time, none of them and a rejected_parts row instead. Either way the part
   * is consumed: a committed part is never refused. Returns whether it applied.
   */
  #applyPart(part: Part): boolean {
    const s = this.#statements;
    if (part.mutations.length === 0) return true;
    const readCurrent = (key: string): Uint8Array | undefined => (s.kvGet.get(key) as { value: Buffer } | undefined)?.value;
    const outcome = applyPartMutations(part.mutations, readCurrent, this.transactionLimits.valueBytesMax);
    if (outcome.kind === "rejected") {
      s.rejectedPut.run(part.lsn, outcome.reason);
      this.#forgetOldestRejection();
      return false;
    }
    for (const [key, value] of outcome.writes) {
      if (value === undefined) s.kvDelete.run(key);
      else s.kvPut.run(key, toBuffer(value));
    }
    return true;
  }

  /** Keeps rejected_parts at REJECTED_PARTS_KEPT_MAX rows; what is forgotten reads as "unknown". */
  #forgetOldestRejection(): void {
    const s = this.#statements;
    const { rows } = s.rejectedCount.get() as { rows: bigint };
    if (rows <= BigInt(REJECTED_PARTS_KEPT_MAX)) return;
    const { lsn } = s.rejectedOldest.get() as { lsn: bigint };
    s.rejectedDelete.run(lsn);
    s.metaPut.run("outcomes_forgotten_through", lsn);
  }

  /** What became of `lsn` on this shard (see PartOutcome). */
  outcome(lsn: bigint): PartOutcome {
    if (lsn > this.#appliedLsn) return { kind: "pending" };
    const row = this.#statements.rejectedGet.get(lsn) as { reason: string } | undefined;
    if (row !== undefined) return { kind: "rejected", reason: row.reason };
    const forgottenThrough = this.#readMeta("outcomes_forgotten_through");
    if (typeof forgottenThrough === "bigint" && lsn <= forgottenThrough) return { kind: "unknown" };
    return { kind: "applied" };
  }

  /**
   * The limits parts are applied under: the cluster's, recorded with the
   * identity. Before they are recorded (a store opened by a test; a shard
   * records them before serving) the defaults apply.
   */
  get transactionLimits(): TransactionLimits {
    return this.#identity.limits ?? DEFAULT_TRANSACTION_LIMITS;
  }

  get(key: string): Buffer | undefined {
    const row = this.#statements.kvGet.get(key) as { value: Buffer } | undefined;
    return row?.value;
  }

  /**
   * Keys starting with `prefix`, after `startAfter` (exclusive, "" = from the
   * start), in key order (UTF-8 byte order), at most `itemsMax` items and
   * about `bytesMax` bytes (always at least one item when any match).
   */
  scan(prefix: string, startAfter: string, itemsMax: number, bytesMax: number): ScanResult {
    assert(itemsMax >= 1 && bytesMax >= 1, "scan limits must be positive");
    const upper = prefixUpperBound(prefix);
    const s = this.#statements;
    // One extra row tells whether more keys match.
    const rows = (
      upper === null ? s.scanOpen.all(prefix, startAfter, itemsMax + 1) : s.scanBounded.all(prefix, startAfter, upper, itemsMax + 1)
    ) as KeyValueItem[];
    const items: KeyValueItem[] = [];
    let bytes = 0;
    for (const row of rows) {
      if (items.length === itemsMax || (items.length > 0 && bytes + row.key.length + row.value.length > bytesMax)) {
        return { items, more: true };
      }
      assert(row.key.startsWith(prefix), `scan for prefix ${JSON.stringify(prefix)} returned key ${JSON.stringify(row.key)}`);
      items.push(row);
      bytes += row.key.length + row.value.length;
    }
    return { items, more: false };
  }

  /**
   * Runs a passive WAL checkpoint, which syncs the WAL before copying it
   * into the database file. When it copied every frame, everything committed
   * before it is on disk, so the applied LSN read beforehand becomes the
   * durable LSN (see checkpointMadeDurable for when it does not).
   */
  checkpoint(): bigint {
    const appliedLsn = this.#appliedLsn;
    const rows = this.#db.pragma("wal_checkpoint(PASSIVE)") as CheckpointResult[];
    if (checkpointMadeDurable(rows[0])) {
      assert(appliedLsn >= this.#durableLsn, "durable LSN moved back");
      this.#durableLsn = appliedLsn;
    }
    return this.#durableLsn;
  }

  /**
   * Copies the database to `file` (which must not exist) with SQLite's online
   * backup, `stepPages` pages per step: each step runs on the event loop, so
   * applies and reads wait at most one step. Writes this connection makes
   * meanwhile are carried into the copy by SQLite, so the copy is the
   * database as of the last step, applied_lsn included.
   */
  async backupTo(file: string, stepPages: number): Promise<void> {
    assert(Number.isInteger(stepPages) && stepPages >= 1, `stepPages must be a positive integer, got ${stepPages}`);
    assert(!fs.existsSync(file), `backup target ${file} exists`);
    await this.#db.backup(file, { progress: () => stepPages });
  }

  close(): void {
    if (!this.#db.open) return;
    this.checkpoint();
    this.#db.close();
  }

  #readAppliedLsn(): bigint {
    const value = this.#readMeta("applied_lsn");
    assert(typeof value === "bigint" && value >= 0n, `meta applied_lsn is not a non-negative integer: ${String(value)}`);
    return value;
  }

  #readMeta(name: string): unknown {
    const row = this.#statements.metaGet.get(name) as { value: unknown } | undefined;
    return row?.value;
  }

  #readOrCreateIdentity(shardId: number): ShardIdentity {
    this.#db.transaction(() => {
      const version = this.#readMeta("schema_version");
      if (version === undefined) {
        const s = this.#statements;
        s.metaPut.run("schema_version", SCHEMA_VERSION);
        s.metaPut.run("shard_id", BigInt(shardId));
        s.metaPut.run("cluster_id", "");
        s.metaPut.run("applied_lsn", 0n);
      } else if (version !== SCHEMA_VERSION) {
        throw failedPrecondition(`schema version ${String(version)} is not the supported ${SCHEMA_VERSION}`);
      }
    })();
    const storedShardId = this.#readMeta("shard_id");
    const clusterId = this.#readMeta("cluster_id");
    const shardMapJson = this.#readMeta("shard_map");
    if (typeof storedShardId !== "bigint" || typeof clusterId !== "string") {
      throw new LpError(Status.DATA_LOSS, "meta table is missing shard_id or cluster_id");
    }
    return {
      shardId: Number(storedShardId),
      clusterId,
      shardMap: parseStoredShardMap(shardMapJson),
      limits: parseStoredLimits(this.#readMeta("transaction_limits")),
    };
  }
}

/** SQLite's answer when a write finds no room (ENOSPC, or the file size limit). */
function isDiskFull(err: unknown): boolean {
  return err instanceof Database.SqliteError && err.code === "SQLITE_FULL";
}

export function isValidPageBytes(pageBytes: number): boolean {
  return Number.isInteger(pageBytes) && pageBytes >= PAGE_BYTES_MIN && pageBytes <= PAGE_BYTES_MAX && (pageBytes & (pageBytes - 1)) === 0;
}

function configureDatabase(db: Database.Database, walAutocheckpointPages: number, pageBytes: number, cacheBytes: number): void {
  // Reading a table proves the file is a database before anything is written.
  db.prepare("SELECT count(*) FROM sqlite_master").get();
  // Takes effect only on a new (empty) file, before WAL mode is set; an existing database keeps its size.
  db.pragma(`page_size = ${pageBytes}`);
  // One process per data directory: the exclusive lock is taken by the write
  // below and held until close (the OS drops it if the process dies).
  db.pragma("locking_mode = EXCLUSIVE");
  const mode = db.pragma("journal_mode = WAL", { simple: true });
  if (mode !== "wal") throw new Error(`could not switch to WAL mode (journal_mode is ${String(mode)})`);
  db.pragma("synchronous = NORMAL");
  db.pragma(`wal_autocheckpoint = ${walAutocheckpointPages}`);
  // A negative cache_size is a bound in KiB, whatever the page size.
  db.pragma(`cache_size = ${-Math.floor(cacheBytes / 1024)}`);
  db.exec(SCHEMA);
  db.exec("BEGIN EXCLUSIVE; COMMIT");
}

/**
 * Brings an older database to SCHEMA_VERSION in one transaction (a crash
 * leaves it at the old version, to be migrated again). A fresh or current
 * file is left alone; a newer one is refused later, by #readOrCreateIdentity.
 */
export function migrateSchema(db: Database.Database): void {
  const row = db.prepare("SELECT value FROM meta WHERE name = 'schema_version'").safeIntegers(true).get() as { value: unknown } | undefined;
  if (row?.value !== 1n) return;
  db.transaction(() => {
    // Version 1 -> 2: the same rows, from a WITHOUT ROWID table into a rowid one.
    db.exec("ALTER TABLE kv RENAME TO kv_v1");
    db.exec(KV_TABLE);
    db.exec("INSERT INTO kv (key, value) SELECT key, value FROM kv_v1 ORDER BY key");
    db.exec("DROP TABLE kv_v1");
    db.prepare("UPDATE meta SET value = ? WHERE name = 'schema_version'").run(SCHEMA_VERSION);
  })();
}

function prepareStatements(db: Database.Database) {
  return {
    metaGet: db.prepare("SELECT value FROM meta WHERE name = ?").safeIntegers(true),
    metaPut: db.prepare("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value"),
    kvGet: db.prepare("SELECT value FROM kv WHERE key = ?"),
    kvPut: db.prepare("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
    kvDelete: db.prepare("DELETE FROM kv WHERE key = ?"),
    scanOpen: db.prepare("SELECT key, value FROM kv WHERE key >= ? AND key > ? ORDER BY key LIMIT ?"),
    scanBounded: db.prepare("SELECT key, value FROM kv WHERE key >= ? AND key > ? AND key < ? ORDER BY key LIMIT ?"),
    rejectedPut: db.prepare("INSERT INTO rejected_parts (lsn, reason) VALUES (?, ?)"),
    rejectedGet: db.prepare("SELECT reason FROM rejected_parts WHERE lsn = ?"),
    rejectedCount: db.prepare("SELECT count(*) AS rows FROM rejected_parts").safeIntegers(true),
    rejectedOldest: db.prepare("SELECT min(lsn) AS lsn FROM rejected_parts").safeIntegers(true),
    rejectedDelete: db.prepare("DELETE FROM rejected_parts WHERE lsn = ?"),
  };
}

function parseStoredShardMap(json: unknown): ShardMapConfig | null {
  if (json === undefined) return null;
  if (typeof json !== "string") throw new LpError(Status.DATA_LOSS, "meta shard_map is not text");
  const parsed = JSON.parse(json) as Partial<ShardMapConfig>;
  if (typeof parsed.shardCount !== "number" || typeof parsed.hash !== "string") {
    throw new LpError(Status.DATA_LOSS, `meta shard_map is malformed: ${json}`);
  }
  const map = { shardCount: parsed.shardCount, hash: parsed.hash };
  validateShardMap(map);
  return map;
}

function parseStoredLimits(json: unknown): TransactionLimits | null {
  if (json === undefined) return null;
  if (typeof json !== "string") throw new LpError(Status.DATA_LOSS, "meta transaction_limits is not text");
  const limits = parseTransactionLimits(JSON.parse(json) as unknown);
  if (limits === null) throw new LpError(Status.DATA_LOSS, `meta transaction_limits is malformed: ${json}`);
  return limits;
}

/**
 * The least string above every string that starts with `prefix`, in UTF-8
 * byte order (which is code point order, and SQLite's BINARY collation):
 * the prefix with its last code point incremented. Null when no such string
 * exists (empty prefix, or only U+10FFFF characters).
 */
export function prefixUpperBound(prefix: string): string | null {
  const codePoints = Array.from(prefix);
  while (codePoints.length > 0) {
    const last = codePoints.pop()!.codePointAt(0)!;
    // No valid string holds a surrogate, so step over the surrogate range.
    const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
    if (next <= 0x10ffff) return codePoints.join("") + String.fromCodePoint(next);
  }
  return null;
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
