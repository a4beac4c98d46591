import net from "node:net";
import { assert } from "@logplayer/common";
import { boundAddress, createRelayServer, listenOnFreePort } from "./listener";

/**
 * A TCP relay between one peer and one target address, so a link can be cut
 * and healed without touching either process. `cut()` resets every open
 * connection and resets each new one as soon as it is accepted (the listener
 * stays bound, so nobody else can take the port and `heal()` cannot fail);
 * `heal()` lets connections through again. Backpressure is passed through:
 * a side whose writes are buffered beyond its high-water mark pauses the
 * other side, so a slow peer bounds the relay's memory.
 */
export interface TcpProxyOptions {
  /** Where the proxy forwards to, "host:port". */
  target: string;
  /** Name in reports, e.g. "logplayer-0→shard-1". */
  name: string;
  listenHost?: string;
  /** Bound on relayed connection pairs open at once; more are reset at once. */
  connectionsMax?: number;
  /** Per-direction socket buffer before the other side is paused. */
  bufferBytesMax?: number;
  /**
   * false: no listener of its own; every connection is handed over with
   * adopt() by a listener that accepted it elsewhere (see SourceRouter).
   * Default true.
   */
  listen?: boolean;
}

export interface TcpProxyStats {
  connectionsAccepted: number;
  /** Reset at once: arrived while cut, or over connectionsMax. */
  connectionsRefused: number;
  /** Open relays destroyed by cut(). */
  connectionsCut: number;
  cuts: number;
  stalls: number;
  bytesForwarded: number;
}

export const PROXY_CONNECTIONS_MAX_DEFAULT = 64;
export const PROXY_BUFFER_BYTES_MAX_DEFAULT = 64 * 1024;

export class TcpProxy {
  readonly name: string;
  readonly target: { host: string; port: number };
  readonly #server: net.Server | undefined;
  readonly #pairs = new Set<{ inbound: net.Socket; outbound: net.Socket }>();
  readonly #connectionsMax: number;
  readonly #bufferBytesMax: number;
  #cut = false;
  #stalled = false;
  #closed = false;
  readonly stats: TcpProxyStats = {
    connectionsAccepted: 0,
    connectionsRefused: 0,
    connectionsCut: 0,
    cuts: 0,
    stalls: 0,
    bytesForwarded: 0,
  };

  private constructor(server: net.Server | undefined, options: TcpProxyOptions) {
    this.name = options.name;
    this.target = splitAddress(options.target);
    this.#server = server;
    this.#connectionsMax = options.connectionsMax ?? PROXY_CONNECTIONS_MAX_DEFAULT;
    this.#bufferBytesMax = options.bufferBytesMax ?? PROXY_BUFFER_BYTES_MAX_DEFAULT;
    assert(Number.isInteger(this.#connectionsMax) && this.#connectionsMax >= 1, "proxy connectionsMax is a positive integer");
    assert(Number.isInteger(this.#bufferBytesMax) && this.#bufferBytesMax >= 1024, "proxy bufferBytesMax is at least 1 KiB");
    server?.on("connection", (socket) => this.#accept(socket));
  }

  /** Listens on a free port of `listenHost` (default 127.0.0.1), unless `listen` is false. */
  static async start(options: TcpProxyOptions): Promise<TcpProxy> {
    if (options.listen === false) return new TcpProxy(undefined, options);
    const server = createRelayServer();
    const proxy = new TcpProxy(server, options);
    await listenOnFreePort(server, options.listenHost);
    return proxy;
  }

  /** "host:port" that peers should dial instead of the target. */
  get address(): string {
    assert(this.#server !== undefined, `proxy ${this.name} has a listener`);
    return boundAddress(this.#server, `proxy ${this.name}`);
  }

  get isCut(): boolean {
    return this.#cut;
  }

  get openConnections(): number {
    return this.#pairs.size;
  }

  /** Resets every relayed connection and refuses new ones until heal(). */
  cut(): void {
    if (this.#cut) return;
    this.#cut = true;
    this.stats.cuts += 1;
    for (const pair of [...this.#pairs]) {
      this.stats.connectionsCut += 1;
      this.#destroyPair(pair);
    }
    assert(this.#pairs.size === 0, "a cut leaves no relay open");
  }

  heal(): void {
    this.#cut = false;
  }

  get isStalled(): boolean {
    return this.#stalled;
  }

  /**
   * Stops relaying without closing anything: bytes stay in the kernel's
   * buffers, TCP flow control stalls the senders, and no RST or FIN tells
   * either side. Only timeouts (gRPC keepalive, the LogPlayer's ack
   * timeout, call deadlines) can notice. New connections are accepted and
   * held the same way.
   */
  stall(): void {
    if (this.#stalled) return;
    this.#stalled = true;
    this.stats.stalls += 1;
    for (const pair of this.#pairs) {
      pair.inbound.pause();
      pair.outbound.pause();
    }
  }

  unstall(): void {
    if (!this.#stalled) return;
    this.#stalled = false;
    for (const pair of this.#pairs) {
      pair.inbound.resume();
      pair.outbound.resume();
    }
  }

  /** Stops listening and resets everything. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#cut = true;
    for (const pair of [...this.#pairs]) this.#destroyPair(pair);
    const server = this.#server;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * Relays a connection accepted by another listener, exactly as if this
   * proxy had accepted it: refused while cut, held while stalled. The socket
   * must still be paused (accepted with pauseOnConnect).
   */
  adopt(socket: net.Socket): void {
    if (socket.destroyed) return; // gone while the other listener looked at it
    this.#accept(socket);
  }

  #accept(inbound: net.Socket): void {
    if (this.#cut || this.#pairs.size >= this.#connectionsMax) {
      this.stats.connectionsRefused += 1;
      inbound.on("error", () => undefined);
      inbound.resetAndDestroy();
      return;
    }
    this.stats.connectionsAccepted += 1;
    const outbound = net.connect({ host: this.target.host, port: this.target.port, noDelay: true });
    const pair = { inbound, outbound };
    this.#pairs.add(pair);
    // Either side failing or ending ends the relay; the peer sees a reset and reconnects.
    for (const socket of [inbound, outbound]) {
      socket.on("error", () => this.#destroyPair(pair));
      socket.on("close", () => this.#destroyPair(pair));
    }
    this.#relay(inbound, outbound);
    this.#relay(outbound, inbound);
    outbound.once("connect", () => {
      if (!this.#stalled) inbound.resume();
    });
  }

  /** Copies `from` into `to`, pausing `from` while `to` holds more than bufferBytesMax unsent. */
  #relay(from: net.Socket, to: net.Socket): void {
    from.on("data", (chunk: Buffer) => {
      this.stats.bytesForwarded += chunk.length;
      to.write(chunk);
      if (to.writableLength > this.#bufferBytesMax) from.pause();
    });
    to.on("drain", () => {
      if (!this.#cut && !this.#stalled) from.resume();
    });
    from.on("end", () => to.end());
  }

  #destroyPair(pair: { inbound: net.Socket; outbound: net.Socket }): void {
    if (!this.#pairs.delete(pair)) return;
    resetSocket(pair.inbound);
    resetSocket(pair.outbound);
  }
}

/**
 * A reset (not a FIN) so the peer's gRPC transport fails its calls at once.
 * libuv refuses a reset after a shutdown (end()) and then never closes the
 * handle, which hangs process exit; such a socket is destroyed plainly.
 */
function resetSocket(socket: net.Socket): void {
  if (socket.destroyed) return;
  if (socket.writableEnded) socket.destroy();
  else socket.resetAndDestroy();
}

function splitAddress(address: string): { host: string; port: number } {
  const match = /^(.+):(\d{1,5})$/.exec(address);
  assert(match !== null, `proxy target ${JSON.stringify(address)} is host:port`);
  const port = Number(match[2]);
  assert(port >= 1 && port <= 65535, `proxy target port ${port} is in range`);
  return { host: match[1]!, port };
}
