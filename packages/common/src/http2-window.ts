import http2 from "node:http2";
import { assert } from "@logplayer/base";

/**
 * HTTP/2 flow-control windows for the services' gRPC connections.
 *
 * Why: HTTP/2 starts every stream and connection with a 64 KiB receive
 * window, and grpc-js 1.12 offers no option to raise it on servers (upstream
 * grpc-node issue #2429; the server side is still open as PR #3058). A
 * sender may then have 64 KiB in flight per stream before a WINDOW_UPDATE,
 * which the receiver sends only when its event loop gets to the data. One
 * AppendStream carrying 10 KB transactions was held to ~6 appends per round
 * trip between two busy event loops, which capped a whole cluster near 550
 * txn/s while the LogStore group-committed only ~6 entries at a time.
 *
 * How: the services (never the client library, which must not change its
 * host's globals) wrap node:http2's createServer, createSecureServer and connect, which grpc-js
 * calls, to advertise `windowBytes` as the initial stream window and to
 * raise each session's connection window to it. Memory stays bounded by the
 * window per stream and by each protocol's own limits (commit window,
 * delivery window, read batches).
 */

/** Default window: above the client's 512 x 10 KB commit window, well under a process's memory. */
export const DEFAULT_HTTP2_WINDOW_BYTES = 8 * 1024 * 1024;
/** HTTP/2's largest window (RFC 9113 section 6.9.1). */
export const HTTP2_WINDOW_BYTES_MAX = 2 ** 31 - 1;
/** HTTP/2's default and smallest sensible window. */
export const HTTP2_WINDOW_BYTES_MIN = 65_535;

let installedWindowBytes = 0;

/** The window installed in this process (0: HTTP/2's default). */
export function installedHttp2WindowBytes(): number {
  return installedWindowBytes;
}

function raiseConnectionWindow(session: http2.Http2Session, windowBytes: number): void {
  // A session torn down before it connected has no window to raise.
  if (!session.destroyed) session.setLocalWindowSize(windowBytes);
}

/**
 * Installs the window for every HTTP/2 server and client created afterwards
 * in this process. Idempotent for one value; a second, different value is a bug.
 */
export function installHttp2Window(windowBytes: number): void {
  assert(
    Number.isInteger(windowBytes) && windowBytes >= HTTP2_WINDOW_BYTES_MIN && windowBytes <= HTTP2_WINDOW_BYTES_MAX,
    `bad HTTP/2 window ${windowBytes}`,
  );
  if (installedWindowBytes !== 0) {
    assert(installedWindowBytes === windowBytes, `HTTP/2 window already installed as ${installedWindowBytes}, not ${windowBytes}`);
    return;
  }
  installedWindowBytes = windowBytes;
  const createServer = http2.createServer;
  const createSecureServer = http2.createSecureServer;
  const connect = http2.connect;
  const patchedCreateServer = (
    options?: http2.ServerOptions,
    listener?: (request: http2.Http2ServerRequest, response: http2.Http2ServerResponse) => void,
  ): http2.Http2Server => {
    const server = createServer({ ...options, settings: { ...options?.settings, initialWindowSize: windowBytes } }, listener);
    server.on("session", (session: http2.ServerHttp2Session) => raiseConnectionWindow(session, windowBytes));
    return server;
  };
  // grpc-js serves mTLS through createSecureServer: without this, TLS servers kept HTTP/2's 64 KiB windows.
  const patchedCreateSecureServer = (
    options: http2.SecureServerOptions,
    listener?: (request: http2.Http2ServerRequest, response: http2.Http2ServerResponse) => void,
  ): http2.Http2SecureServer => {
    const server = createSecureServer({ ...options, settings: { ...options.settings, initialWindowSize: windowBytes } }, listener);
    server.on("session", (session: http2.ServerHttp2Session) => raiseConnectionWindow(session, windowBytes));
    return server;
  };
  const patchedConnect = (
    authority: string | URL,
    options?: http2.ClientSessionOptions | http2.SecureClientSessionOptions,
    listener?: (session: http2.ClientHttp2Session, socket: unknown) => void,
  ): http2.ClientHttp2Session => {
    const session = connect(authority, { ...options, settings: { ...options?.settings, initialWindowSize: windowBytes } }, listener);
    session.once("connect", () => raiseConnectionWindow(session, windowBytes));
    return session;
  };
  http2.createServer = patchedCreateServer as typeof http2.createServer;
  http2.createSecureServer = patchedCreateSecureServer as typeof http2.createSecureServer;
  http2.connect = patchedConnect as typeof http2.connect;
}
