import type { SegmentFile, SegmentFiles } from "@logplayer/wal";

/**
 * A test-only fault under the real WAL: segment files whose writes report
 * success at once, before the device has made them durable (a write cache
 * that lies about O_DSYNC, or a WAL that acknowledges before its writev
 * returns). The write still lands later, if no crash comes first. The
 * simulator must catch it as lost durability; never used outside tests.
 */
export function ackBeforeDurable(files: SegmentFiles): SegmentFiles {
  return {
    location: files.location,
    list: () => files.list(),
    ensureDirectory: () => files.ensureDirectory(),
    open: async (name, mode) => lyingFile(await files.open(name, mode)),
    readAll: (name) => files.readAll(name),
    read: (name, position, length) => files.read(name, position, length),
    readSync: (name, position, length) => files.readSync(name, position, length),
    unlink: (name) => files.unlink(name),
    syncDirectory: () => files.syncDirectory(),
  };
}

function lyingFile(file: SegmentFile): SegmentFile {
  return {
    writev: (buffers, position) => {
      // Errors of the real write are lost too: the lie already said it worked.
      file.writev(buffers, position).catch(() => {});
      return Promise.resolve(buffers.reduce((bytes, buffer) => bytes + buffer.length, 0));
    },
    truncate: (length) => file.truncate(length),
    datasync: () => file.datasync(),
    close: () => file.close(),
  };
}
