import net from "node:net";
import { assert, LOOPBACK_HOST } from "@logplayer/common";

/**
 * The listening side shared by TcpProxy and SourceRouter: a server that
 * accepts connections paused (the owner decides where their bytes go before
 * any are read) on a free port of loopback.
 */
export function createRelayServer(): net.Server {
  return net.createServer({ pauseOnConnect: true, noDelay: true });
}

/** Listens on a free port of `host`; the server's "connection" handler must already be attached. */
export async function listenOnFreePort(server: net.Server, host: string = LOOPBACK_HOST): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** "host:port" a listening server is bound to; `what` names it in the assertion. */
export function boundAddress(server: net.Server, what: string): string {
  const bound = server.address();
  assert(bound !== null && typeof bound === "object", `${what} is listening`);
  return `${bound.address}:${bound.port}`;
}
