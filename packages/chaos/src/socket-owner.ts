import fs from "node:fs";

/**
 * Which local process opened a TCP connection, from Linux's /proc: the
 * connecting socket's inode from /proc/net/tcp{,6}, then the candidate
 * process whose /proc/<pid>/fd holds that socket. Only for connections
 * between processes of this machine (loopback), and only on Linux;
 * `socketOwnerSupported()` says whether it can work here.
 */

const PROC_NET_TABLES = ["/proc/net/tcp", "/proc/net/tcp6"];

export function socketOwnerSupported(): boolean {
  return process.platform === "linux" && fs.existsSync(PROC_NET_TABLES[0]!);
}

/**
 * The inode of the socket whose local port is `clientPort` and remote port
 * `serverPort` (the connecting end, not the accepting one), from the text of
 * /proc/net/tcp or /proc/net/tcp6. Undefined when absent or without an inode
 * (a socket in TIME_WAIT has none). Pure.
 */
export function connectingSocketInode(table: string, clientPort: number, serverPort: number): string | undefined {
  for (const line of table.split("\n").slice(1)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const localPort = portOf(fields[1]!);
    const remotePort = portOf(fields[2]!);
    const inode = fields[9]!;
    if (localPort === clientPort && remotePort === serverPort && inode !== "0") return inode;
  }
  return undefined;
}

function portOf(hexAddress: string): number {
  return parseInt(hexAddress.slice(hexAddress.lastIndexOf(":") + 1), 16);
}

/**
 * The name (from `candidates`, by pid) of the process holding the connecting
 * end of a connection from `clientPort` to `serverPort`, or undefined when
 * none of them does (another process, or one that has exited since).
 */
export async function socketOwner(
  clientPort: number,
  serverPort: number,
  candidates: ReadonlyMap<number, string>,
): Promise<string | undefined> {
  let inode: string | undefined;
  for (const table of PROC_NET_TABLES) {
    inode = connectingSocketInode(await readOrEmpty(table), clientPort, serverPort);
    if (inode !== undefined) break;
  }
  if (inode === undefined) return undefined;
  const link = `socket:[${inode}]`;
  for (const [pid, name] of candidates) {
    const dir = `/proc/${pid}/fd`;
    let fds: string[];
    try {
      fds = await fs.promises.readdir(dir);
    } catch {
      continue; // exited
    }
    for (const fd of fds) {
      try {
        if ((await fs.promises.readlink(`${dir}/${fd}`)) === link) return name;
      } catch {
        // the descriptor closed while we looked
      }
    }
  }
  return undefined;
}

async function readOrEmpty(file: string): Promise<string> {
  try {
    return await fs.promises.readFile(file, "utf8");
  } catch {
    return "";
  }
}
