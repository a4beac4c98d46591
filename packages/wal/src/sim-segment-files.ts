import { assert } from "@logplayer/base";
import type { SegmentFile, SegmentFiles } from "./segment-files";

/** One file's bytes: what reads see now, and what a crash leaves. */
interface SimInode {
  current: Buffer;
  durable: Buffer;
}

interface InFlightWrite {
  readonly inode: SimInode;
  readonly position: number;
  readonly bytes: Buffer;
}

interface Operation {
  readonly complete: () => void;
}

/**
 * Decides when an operation completes: called once per operation as it
 * starts; the operation completes (becomes durable, resolves) when
 * `complete` is called. A simulator schedules `complete` on its own clock.
 * `makesDurable` is true for the operations that wait for the device
 * (writev, datasync, syncDirectory), false for the ones a real file system
 * answers from memory (reads, list, open, truncate, unlink, close).
 */
export type SimDiskScheduler = (complete: () => void, makesDurable: boolean) => void;

export interface SimDiskOptions {
  /** Uniform in [0, 1), seeded: decides how much of a torn write survives a crash. */
  readonly random: () => number;
  /**
   * "immediate": every operation completes at once (on the next microtask).
   * "manual": operations queue until completeNext(), so a test decides when
   * each write becomes durable and can crash in between.
   * A scheduler: each operation completes when the scheduler says (see
   * SimDiskScheduler); completing one of a crashed process does nothing.
   */
  readonly completion: "immediate" | "manual" | SimDiskScheduler;
}

/**
 * A directory of segment files in memory that keeps the SegmentFiles
 * durability contract and can lose power. A crash keeps only what was made
 * durable (completed writev, datasync after truncate, syncDirectory after
 * create and unlink), and tears the last write still in flight: a prefix of
 * it of random length (possibly none, possibly all) survives. Operations of
 * the files mounted before a crash never complete (that process is dead).
 */
export class SimDisk {
  /** Directory entries as the running process sees them, and as a crash leaves them. */
  #currentNames = new Map<string, SimInode>();
  #durableNames = new Map<string, SimInode>();
  #inFlightWrites: InFlightWrite[] = [];
  #operations: Operation[] = [];
  #generation = 0;
  readonly stats = { crashes: 0, tornWrites: 0, reads: 0, syncReads: 0, noSpaceErrors: 0 };
  /** Bytes the files may hold in all, or null for no limit: a write past it stores what fits and fails with ENOSPC. */
  #capacityBytes: number | null = null;

  constructor(private readonly options: SimDiskOptions) {}

  /** Sets (or with null lifts) the disk's capacity; lowering it below what is stored only stops growth. */
  setCapacity(bytes: number | null): void {
    this.#capacityBytes = bytes;
  }

  /** Bytes the files hold as the running process sees them. */
  get usedBytes(): number {
    let used = 0;
    for (const inode of new Set(this.#currentNames.values())) used += inode.current.length;
    return used;
  }

  /**
   * How many of `length` bytes written at `position` of `inode` fit; the
   * rest would grow the disk past its capacity.
   */
  bytesThatFit(inode: SimInode, position: number, length: number): number {
    if (this.#capacityBytes === null) return length;
    const growth = Math.max(0, position + length - inode.current.length);
    const free = Math.max(0, this.#capacityBytes - this.usedBytes);
    if (growth <= free) return length;
    return Math.max(0, inode.current.length + free - position);
  }

  noSpace(): NodeJS.ErrnoException {
    this.stats.noSpaceErrors++;
    return fileError("ENOSPC", "no space left on device (sim disk)");
  }

  /** A datasync made the file's current bytes durable: no earlier write to it is still in flight. */
  settleWrites(inode: SimInode): void {
    this.#inFlightWrites = this.#inFlightWrites.filter((write) => write.inode !== inode);
  }

  /** The files as a newly started process sees them. */
  mount(location = "sim-wal"): SegmentFiles {
    return new SimSegmentFiles(this, this.#generation, location);
  }

  /** Operations started but not completed ("manual" completion). */
  get pendingOperations(): number {
    return this.#operations.length;
  }

  /** Completes the oldest pending operation; false when none is pending. */
  completeNext(): boolean {
    const operation = this.#operations.shift();
    if (operation === undefined) return false;
    operation.complete();
    return true;
  }

  /** Power loss: see the class comment. Mount again to restart. */
  crash(): void {
    const torn = this.#inFlightWrites[this.#inFlightWrites.length - 1];
    this.#generation++;
    this.#operations = [];
    this.#inFlightWrites = [];
    this.#currentNames = new Map(this.#durableNames);
    for (const inode of this.#durableNames.values()) inode.current = Buffer.from(inode.durable);
    if (torn !== undefined && [...this.#durableNames.values()].includes(torn.inode)) {
      const survivingBytes = Math.floor(this.options.random() * (torn.bytes.length + 1));
      writeAt(torn.inode, "durable", torn.position, torn.bytes.subarray(0, survivingBytes));
      torn.inode.current = Buffer.from(torn.inode.durable);
      if (survivingBytes > 0) this.stats.tornWrites++;
    }
    this.stats.crashes++;
  }

  /** Durable bytes of every file, by name (for tests). */
  durableFiles(): Map<string, Buffer> {
    return new Map([...this.#durableNames].map(([name, inode]) => [name, Buffer.from(inode.durable)]));
  }

  // The operations of SimSegmentFiles: `effect` runs at once (what the process
  // sees), `durably` when the operation completes.

  run<T>(generation: number, effect: () => T, durably?: (result: T) => void): Promise<T> {
    if (generation !== this.#generation) return new Promise<T>(() => {});
    let result: T;
    try {
      result = effect();
    } catch (err: unknown) {
      return Promise.reject(err);
    }
    return new Promise<T>((resolve) => {
      const complete = (): void => {
        durably?.(result);
        resolve(result);
      };
      const { completion } = this.options;
      if (completion === "immediate") complete();
      else if (completion === "manual") this.#operations.push({ complete });
      else
        completion(() => {
          if (generation === this.#generation) complete();
        }, durably !== undefined);
    });
  }

  checkGeneration(generation: number): void {
    assert(generation === this.#generation, "sim disk: a crashed process touched its files");
  }

  inode(name: string): SimInode {
    const inode = this.#currentNames.get(name);
    if (inode === undefined) throw fileError("ENOENT", `no such file: ${name}`);
    return inode;
  }

  names(): string[] {
    return [...this.#currentNames.keys()];
  }

  create(name: string): SimInode {
    if (this.#currentNames.has(name)) throw fileError("EEXIST", `file exists: ${name}`);
    const inode: SimInode = { current: Buffer.alloc(0), durable: Buffer.alloc(0) };
    this.#currentNames.set(name, inode);
    return inode;
  }

  unlink(name: string): void {
    this.inode(name);
    this.#currentNames.delete(name);
  }

  syncNames(): void {
    this.#durableNames = new Map(this.#currentNames);
  }

  startWrite(write: InFlightWrite): void {
    writeAt(write.inode, "current", write.position, write.bytes);
    this.#inFlightWrites.push(write);
  }

  finishWrite(write: InFlightWrite): void {
    writeAt(write.inode, "durable", write.position, write.bytes);
    this.#inFlightWrites = this.#inFlightWrites.filter((w) => w !== write);
  }
}

function writeAt(inode: SimInode, which: "current" | "durable", position: number, bytes: Buffer): void {
  const old = inode[which];
  const length = Math.max(old.length, position + bytes.length);
  const next = Buffer.alloc(length);
  old.copy(next, 0, 0, old.length);
  bytes.copy(next, position);
  inode[which] = next;
}

function fileError(code: string, message: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${code}: ${message}`);
  error.code = code;
  return error;
}

class SimSegmentFiles implements SegmentFiles {
  constructor(
    private readonly disk: SimDisk,
    private readonly generation: number,
    readonly location: string,
  ) {}

  list(): Promise<string[]> {
    return this.disk.run(this.generation, () => this.disk.names());
  }

  ensureDirectory(): Promise<void> {
    return this.disk.run(this.generation, () => undefined);
  }

  async open(name: string, mode: "create" | "existing"): Promise<SegmentFile> {
    const inode = await this.disk.run(this.generation, () => (mode === "create" ? this.disk.create(name) : this.disk.inode(name)));
    return new SimSegmentFile(this.disk, this.generation, inode);
  }

  readAll(name: string): Promise<Uint8Array> {
    return this.disk.run(this.generation, () => Buffer.from(this.disk.inode(name).current));
  }

  read(name: string, position: number, length: number): Promise<Uint8Array> {
    return this.disk.run(this.generation, () => {
      this.disk.stats.reads++;
      return readExactly(this.disk.inode(name), name, position, length);
    });
  }

  readSync(name: string, position: number, length: number): Uint8Array {
    this.disk.checkGeneration(this.generation);
    this.disk.stats.syncReads++;
    return readExactly(this.disk.inode(name), name, position, length);
  }

  unlink(name: string): Promise<void> {
    return this.disk.run(this.generation, () => this.disk.unlink(name));
  }

  syncDirectory(): Promise<void> {
    return this.disk.run(
      this.generation,
      () => undefined,
      () => this.disk.syncNames(),
    );
  }
}

function readExactly(inode: SimInode, name: string, position: number, length: number): Buffer {
  assert(position + length <= inode.current.length, `${name} ended at ${inode.current.length}, expected ${position + length}`);
  return Buffer.from(inode.current.subarray(position, position + length));
}

class SimSegmentFile implements SegmentFile {
  constructor(
    private readonly disk: SimDisk,
    private readonly generation: number,
    private readonly inode: SimInode,
  ) {}

  writev(buffers: readonly Uint8Array[], position: number): Promise<number> {
    const bytes = Buffer.concat(buffers);
    const fits = this.disk.bytesThatFit(this.inode, position, bytes.length);
    const write: InFlightWrite = { inode: this.inode, position, bytes: fits === bytes.length ? bytes : bytes.subarray(0, fits) };
    return this.disk.run(
      this.generation,
      () => {
        // A full disk stores the prefix that fits (in flight, so a crash may keep any part of it) and fails.
        this.disk.startWrite(write);
        if (fits < bytes.length) throw this.disk.noSpace();
        return write.bytes.length;
      },
      () => this.disk.finishWrite(write),
    );
  }

  truncate(length: number): Promise<void> {
    return this.disk.run(this.generation, () => {
      assert(length <= this.inode.current.length, "sim disk: truncate only shortens");
      this.inode.current = Buffer.from(this.inode.current.subarray(0, length));
    });
  }

  datasync(): Promise<void> {
    return this.disk.run(
      this.generation,
      () => undefined,
      () => {
        this.inode.durable = Buffer.from(this.inode.current);
        this.disk.settleWrites(this.inode);
      },
    );
  }

  close(): Promise<void> {
    return this.disk.run(this.generation, () => undefined);
  }
}
