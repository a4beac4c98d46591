import { closeSync, constants as fsConstants, promises as fs, openSync, readSync } from "node:fs";
import path from "node:path";
import { assert, preconditionFailed } from "@logplayer/base";
import type { SegmentFile, SegmentFiles } from "./segment-files";

/**
 * Segments opened for writing: read-write, every write durable on return
 * (the WAL acknowledges an append when its writev returns, with no fdatasync
 * after it: one thread-pool round trip per group commit instead of two). A
 * platform without O_DSYNC (Windows) would silently lose durability, so
 * NodeSegmentFiles refuses to exist there.
 */
const SEGMENT_OPEN_FLAGS = fsConstants.O_RDWR | (fsConstants.O_DSYNC ?? 0);

/** The segment files of one directory on the local file system (fs.promises; readSync for the Raft Storage port). */
export class NodeSegmentFiles implements SegmentFiles {
  constructor(readonly location: string) {
    if (fsConstants.O_DSYNC === undefined) {
      throw preconditionFailed(
        `this platform (${process.platform}) has no O_DSYNC, which the WAL needs for durable writes; run the LogStore on Linux or macOS`,
      );
    }
  }

  async list(): Promise<string[]> {
    try {
      return await fs.readdir(this.location);
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
  }

  async ensureDirectory(): Promise<void> {
    try {
      await fs.access(this.location);
    } catch {
      await fs.mkdir(this.location, { recursive: true });
      await syncDirectory(path.dirname(this.location));
    }
  }

  async open(name: string, mode: "create" | "existing"): Promise<SegmentFile> {
    const flags = mode === "create" ? SEGMENT_OPEN_FLAGS | fsConstants.O_CREAT | fsConstants.O_EXCL : SEGMENT_OPEN_FLAGS;
    return new NodeSegmentFile(await fs.open(this.#pathOf(name), flags));
  }

  readAll(name: string): Promise<Uint8Array> {
    return fs.readFile(this.#pathOf(name));
  }

  async read(name: string, position: number, length: number): Promise<Uint8Array> {
    const handle = await fs.open(this.#pathOf(name), "r");
    try {
      const buffer = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(buffer, done, length - done, position + done);
        assert(bytesRead > 0, `${name} ended at ${position + done}, expected ${position + length}`);
        done += bytesRead;
      }
      return buffer;
    } finally {
      await handle.close();
    }
  }

  readSync(name: string, position: number, length: number): Uint8Array {
    const buffer = Buffer.allocUnsafe(length);
    const fd = openSync(this.#pathOf(name), "r");
    try {
      let done = 0;
      while (done < length) {
        const bytesRead = readSync(fd, buffer, done, length - done, position + done);
        assert(bytesRead > 0, `${name} ended at ${position + done}, expected ${position + length}`);
        done += bytesRead;
      }
    } finally {
      closeSync(fd);
    }
    return buffer;
  }

  unlink(name: string): Promise<void> {
    return fs.unlink(this.#pathOf(name));
  }

  syncDirectory(): Promise<void> {
    return syncDirectory(this.location);
  }

  #pathOf(name: string): string {
    assert(path.basename(name) === name, `segment file name ${name} is not a plain name`);
    return path.join(this.location, name);
  }
}

class NodeSegmentFile implements SegmentFile {
  constructor(private readonly handle: fs.FileHandle) {}

  async writev(buffers: readonly Uint8Array[], position: number): Promise<number> {
    // Durable when it returns: the file is open with O_DSYNC.
    const { bytesWritten } = await this.handle.writev(buffers as Uint8Array[], position);
    return bytesWritten;
  }

  truncate(length: number): Promise<void> {
    return this.handle.truncate(length);
  }

  datasync(): Promise<void> {
    return this.handle.datasync();
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/** fsync a directory, so that file creations and deletions in it survive a crash. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
