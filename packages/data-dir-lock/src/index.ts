export { DataDirInUseError, LOCK_FILE, LOCK_HOLDER_FILE, lockDataDir, readHolder } from "./data-dir-lock";
export type { DataDirLock, LockHolder } from "./data-dir-lock";
