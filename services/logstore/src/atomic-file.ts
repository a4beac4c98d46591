import { promises as fs } from "node:fs";
import path from "node:path";
import { syncDirectory } from "@logplayer/wal";

/** Writes a small file crash-safely: temp file, fsync, rename, fsync of the directory. */
export async function writeFileAtomically(filePath: string, text: string): Promise<void> {
  const tempPath = `${filePath}.tmp`;
  const handle = await fs.open(tempPath, "w");
  try {
    await handle.writeFile(text, "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tempPath, filePath);
  await syncDirectory(path.dirname(filePath));
}
