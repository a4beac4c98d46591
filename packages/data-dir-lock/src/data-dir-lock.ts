import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";

/** The lock file inside a locked directory; its companion holds who took it. */
export const LOCK_FILE = "LOCK";
export const LOCK_HOLDER_FILE = "LOCK.holder";

/** Who holds a directory, as the holder wrote it down when it took the lock. */
export interface LockHolder {
  readonly pid: number;
  /** What the holder is, e.g. "logstore replica 2" or "pnpm start". */
  readonly owner: string;
  readonly startedAt: string;
}

/** Another live process holds the directory. */
export class DataDirInUseError extends Error {
  override readonly name = "DataDirInUseError";
  constructor(
    readonly dir: string,
    readonly holder: LockHolder | null,
  ) {
    const who = holder === null ? "another process (its pid is unknown)" : `${holder.owner} (pid ${holder.pid}, since ${holder.startedAt})`;
    super(`data directory ${dir} is in use by ${who}; stop it first, or give this process its own directory`);
  }
}

export interface DataDirLock {
  readonly dir: string;
  /** Releases the lock; idempotent. A process that dies releases it too (the kernel drops the lock). */
  release(): void;
}

/**
 * Takes an exclusive lock on `dir` (created if missing) for the life of this
 * process, or throws DataDirInUseError naming the holder.
 *
 * Why SQLite: Node has no flock/fcntl API. SQLite's unix VFS takes a POSIX
 * advisory lock on the file and, in EXCLUSIVE locking mode, keeps it after
 * its first write until the connection closes. The kernel releases it when
 * the process dies however it dies (SIGKILL included), so a crash never
 * leaves a stale lock, and a paused process (SIGSTOP) keeps it: unlike a
 * pid file or a lease, a "zombie" can never share the directory.
 */
export function lockDataDir(dir: string, owner: string): DataDirLock {
  const absolute = path.resolve(dir);
  fs.mkdirSync(absolute, { recursive: true });
  const lockPath = path.join(absolute, LOCK_FILE);
  let db: Database.Database;
  try {
    // timeout 0: a held lock answers SQLITE_BUSY at once instead of waiting.
    db = new Database(lockPath, { timeout: 0 });
  } catch (err: unknown) {
    throw new Error(`cannot open the lock file ${lockPath}: ${(err as Error).message}`, { cause: err });
  }
  try {
    db.pragma("locking_mode = EXCLUSIVE");
    db.pragma("journal_mode = MEMORY");
    // The first write takes the exclusive lock, which EXCLUSIVE mode then keeps.
    db.exec("CREATE TABLE IF NOT EXISTS lock_owner (id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL)");
    db.prepare("INSERT OR REPLACE INTO lock_owner (id, pid) VALUES (1, ?)").run(process.pid);
  } catch (err: unknown) {
    db.close();
    if (isBusy(err)) throw new DataDirInUseError(absolute, readHolder(absolute));
    throw new Error(`cannot lock ${absolute}: ${(err as Error).message}`, { cause: err });
  }
  // Readable by a contender, which cannot read the locked database itself.
  const holder: LockHolder = { pid: process.pid, owner, startedAt: new Date().toISOString() };
  fs.writeFileSync(path.join(absolute, LOCK_HOLDER_FILE), `${JSON.stringify(holder)}\n`);
  let released = false;
  return {
    dir: absolute,
    release: () => {
      if (released) return;
      released = true;
      db.close();
    },
  };
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === "SQLITE_BUSY" || code === "SQLITE_LOCKED";
}

/** The holder's own note, or null when it is missing or unreadable (it is advisory). */
export function readHolder(dir: string): LockHolder | null {
  try {
    const parsed: unknown = JSON.parse(fs.readFileSync(path.join(dir, LOCK_HOLDER_FILE), "utf8"));
    if (typeof parsed !== "object" || parsed === null) return null;
    const { pid, owner, startedAt } = parsed as Record<string, unknown>;
    if (typeof pid !== "number" || typeof owner !== "string" || typeof startedAt !== "string") return null;
    return { pid, owner, startedAt };
  } catch {
    return null;
  }
}
