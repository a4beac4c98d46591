/**
 * The WAL's only way to its files: one directory of segment files. The Node
 * implementation (node-segment-files.ts) is the one that ships; the simulated
 * one (sim-segment-files.ts) keeps files in memory and can crash.
 *
 * Durability contract, which both implementations keep and the WAL relies on:
 * - A segment opened for writing is write-through (O_DSYNC): when `writev`
 *   resolves, its bytes and the file length they need are durable. Until then
 *   a crash may lose the write or keep any prefix of it.
 * - `truncate` is durable only after the following `datasync` resolves.
 * - Creating and unlinking files are durable only after `syncDirectory`.
 * - Reads see everything written so far, durable or not.
 * Errors are thrown as they come (ENOENT, EEXIST, EIO...); the WAL treats any
 * write error as fatal.
 */
export interface SegmentFiles {
  /** Where the files are, for messages (a directory path). */
  readonly location: string;
  /** Names of the files in the directory; [] when the directory does not exist. */
  list(): Promise<string[]>;
  /** Creates the directory if it is missing, durably. */
  ensureDirectory(): Promise<void>;
  /**
   * Opens `name` for writing. "create" makes a new, empty file and fails if
   * one exists (its name is durable after syncDirectory); "existing" opens one.
   */
  open(name: string, mode: "create" | "existing"): Promise<SegmentFile>;
  /** The whole file (recovery reads one segment at a time). */
  readAll(name: string): Promise<Uint8Array>;
  /** Exactly `length` bytes at `position`; throws if the file is shorter. */
  read(name: string, position: number, length: number): Promise<Uint8Array>;
  /**
   * read's blocking twin, for the Raft core's Storage port, whose `entries`
   * cannot await (the core has no awaits inside a step). Only a follower far
   * behind the entry cache makes the leader use it.
   */
  readSync(name: string, position: number, length: number): Uint8Array;
  unlink(name: string): Promise<void>;
  /** Makes file creations and deletions in the directory durable. */
  syncDirectory(): Promise<void>;
}

/** One open segment file; see SegmentFiles for what is durable when. */
export interface SegmentFile {
  /** Writes `buffers` in order at `position`; resolves with the bytes written once they are durable. */
  writev(buffers: readonly Uint8Array[], position: number): Promise<number>;
  truncate(length: number): Promise<void>;
  datasync(): Promise<void>;
  close(): Promise<void>;
}
