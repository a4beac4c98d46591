import { spawnSync } from "node:child_process";
import { promises as fs } from "node:fs";

/**
 * A real full file system for disk-full tests: a tmpfs of `size` (as
 * mount(8) takes it, "6m") mounted at `mountPoint`. Needs root (CI is);
 * returns why not otherwise, so a local run can skip.
 */
export function mountTmpfs(mountPoint: string, size: string): { ok: true } | { ok: false; reason: string } {
  const result = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", mountPoint], { encoding: "utf8" });
  return result.status === 0 ? { ok: true } : { ok: false, reason: `mount tmpfs failed: ${result.stderr || result.error?.message}` };
}

export function unmount(mountPoint: string): void {
  spawnSync("umount", [mountPoint]);
}

/** Writes `file` until the file system holding it has about `leaveBytes` free. */
export async function fillUntilFree(file: string, mountPoint: string, leaveBytes: number): Promise<void> {
  const { bavail, bsize } = await fs.statfs(mountPoint);
  const fill = Math.max(0, Number(bavail) * Number(bsize) - leaveBytes);
  await fs.writeFile(file, Buffer.alloc(fill));
}
