import fs from "node:fs";
import net from "node:net";
import { assert } from "@logplayer/base";

/** Where every local process listens: tests and the local cluster only ever use loopback. */
export const LOOPBACK_HOST = "127.0.0.1";

/**
 * Free loopback ports for processes that tests and the local cluster start
 * and restart on a fixed port. They are drawn from [AUTO_PORT_MIN, the kernel's ephemeral range),
 * not from port 0. A port-0 bind and every outgoing connection take their
 * port from the ephemeral range, so while a cluster process is down (killed
 * by a test, restarting on the same port) another program on the machine
 * could take its port from there (seen in CI: a shard restarting into a port
 * another test's server had just bound). Below that range nothing is handed
 * out implicitly. Used by packages/cluster's auto port table and by tests.
 */
export const AUTO_PORT_MIN = 20_000;
/** Linux's default ephemeral range starts here; used when the kernel's setting cannot be read. */
const EPHEMERAL_PORT_LOW_DEFAULT = 32_768;
/** Random draws before falling back to port 0 (a crowded range). */
const AUTO_PORT_ATTEMPTS_MAX = 200;

/** The lowest port of the kernel's ephemeral range (Linux: /proc/sys/net/ipv4/ip_local_port_range). */
export function ephemeralPortLow(
  readRange: () => string = () => fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8"),
): number {
  try {
    const low = Number(readRange().trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > AUTO_PORT_MIN ? low : EPHEMERAL_PORT_LOW_DEFAULT;
  } catch {
    return EPHEMERAL_PORT_LOW_DEFAULT;
  }
}

export async function freePorts(count: number, host = LOOPBACK_HOST): Promise<number[]> {
  assert(Number.isInteger(count) && count >= 0 && count <= 1000, `free port count ${count} out of range`);
  const high = ephemeralPortLow();
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) servers.push(await listenOnFreePort(host, high));
    return servers.map((server) => (server.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}

/** Listens on a random free port in [AUTO_PORT_MIN, high); port 0 only when none is found. */
async function listenOnFreePort(host: string, high: number): Promise<net.Server> {
  for (let attempt = 0; attempt < AUTO_PORT_ATTEMPTS_MAX; attempt++) {
    const port = AUTO_PORT_MIN + Math.floor(Math.random() * (high - AUTO_PORT_MIN));
    const server = await tryListen(host, port);
    if (server !== null) return server;
  }
  const fallback = await tryListen(host, 0);
  assert(fallback !== null, `no free port on ${host}`);
  return fallback;
}

function tryListen(host: string, port: number): Promise<net.Server | null> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(null));
    server.listen({ host, port, exclusive: true }, () => resolve(server));
  });
}
