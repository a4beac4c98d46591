import type net from "node:net";
import { boundAddress, createRelayServer, listenOnFreePort } from "./listener";
import { socketOwner } from "./socket-owner";
import type { TcpProxy } from "./tcp-proxy";

/**
 * One listening address that several processes dial, with a separate link
 * (TcpProxy) per dialling process: each accepted connection is handed to the
 * proxy of the process that opened it, found from /proc (socket-owner.ts).
 * This is how the LogStore replicas, which must all be given the same peer
 * list, still get one cuttable link per (sender, receiver) pair. A
 * connection from a process not in `sources` (or one that exited before it
 * was identified) goes through `fallback`, which the chaos run never cuts.
 */
export interface SourceRouterOptions {
  /** In reports: "→logstore-2". */
  name: string;
  /** The processes that may dial, by pid; asked at every connection (pids change on restart). */
  sources: () => ReadonlyMap<number, string>;
  /** The link of each source, by source name. */
  routes: ReadonlyMap<string, TcpProxy>;
  /** For connections from anyone else. */
  fallback: TcpProxy;
  listenHost?: string;
}

export interface SourceRouterStats {
  /** Connections handed to a source's link. */
  routed: number;
  /** Connections from an unknown process, relayed by the fallback. */
  unidentified: number;
}

export class SourceRouter {
  readonly name: string;
  readonly stats: SourceRouterStats = { routed: 0, unidentified: 0 };
  readonly #server: net.Server;
  readonly #options: SourceRouterOptions;
  #closed = false;

  private constructor(server: net.Server, options: SourceRouterOptions) {
    this.name = options.name;
    this.#server = server;
    this.#options = options;
    server.on("connection", (socket) => void this.#route(socket));
  }

  static async start(options: SourceRouterOptions): Promise<SourceRouter> {
    const server = createRelayServer();
    const router = new SourceRouter(server, options);
    await listenOnFreePort(server, options.listenHost);
    return router;
  }

  get address(): string {
    return boundAddress(this.#server, `router ${this.name}`);
  }

  /** Stops listening; relayed connections belong to the proxies (close those too). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #route(socket: net.Socket): Promise<void> {
    // Paused since accepted; a reset while we look is ignored (adopt() skips a destroyed socket).
    const ignoreError = (): void => undefined;
    socket.on("error", ignoreError);
    let source: string | undefined;
    try {
      const clientPort = socket.remotePort;
      const serverPort = socket.localPort;
      if (clientPort !== undefined && serverPort !== undefined) source = await socketOwner(clientPort, serverPort, this.#options.sources());
    } catch {
      source = undefined;
    }
    socket.off("error", ignoreError);
    if (this.#closed) {
      socket.destroy();
      return;
    }
    const route = source === undefined ? undefined : this.#options.routes.get(source);
    if (route === undefined) this.stats.unidentified += 1;
    else this.stats.routed += 1;
    (route ?? this.#options.fallback).adopt(socket);
  }
}
