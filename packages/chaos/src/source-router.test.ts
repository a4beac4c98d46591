import net from "node:net";
import { connectingSocketInode, socketOwnerSupported } from "./socket-owner";
import { SourceRouter } from "./source-router";
import { TcpProxy } from "./tcp-proxy";

// Two connections on loopback, as /proc/net/tcp lists them: both ends of
// 127.0.0.1:40000 -> :7101 (inodes 111 and 222), a listener, a TIME_WAIT.
const PROC_NET_TCP = [
  "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
  "   0: 0100007F:1BBD 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 999 1 0000000000000000 100 0 0 10 0",
  "   1: 0100007F:9C40 0100007F:1BBD 01 00000000:00000000 00:00000000 00000000  1000        0 111 1 0000000000000000 20 4 30 10 -1",
  "   2: 0100007F:1BBD 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 222 1 0000000000000000 20 4 30 10 -1",
  "   3: 0100007F:9C41 0100007F:1BBD 06 00000000:00000000 03:00000F9F 00000000     0        0 0 3 0000000000000000",
].join("\n");

test("the connecting end's inode is found by (client port, server port), never the accepting end's", () => {
  expect(connectingSocketInode(PROC_NET_TCP, 40000, 7101)).toBe("111");
  expect(connectingSocketInode(PROC_NET_TCP, 7101, 40000)).toBe("222");
  expect(connectingSocketInode(PROC_NET_TCP, 40001, 7101)).toBeUndefined(); // TIME_WAIT: no inode
  expect(connectingSocketInode(PROC_NET_TCP, 40002, 7101)).toBeUndefined();
});

const linuxOnly = socketOwnerSupported() ? describe : describe.skip;
// CI runs on Linux, where the chaos run needs this: there a skip would hide a broken host, so it fails.
if (!socketOwnerSupported() && process.env["CI"]) {
  test("socket owners can be read from /proc/net (CI never skips the SourceRouter tests)", () => {
    expect(socketOwnerSupported()).toBe(true);
  });
}

linuxOnly("SourceRouter (real sockets; this test process is the dialling source)", () => {
  let echo: net.Server;
  let echoAddress: string;
  let mine: TcpProxy;
  let fallback: TcpProxy;
  let routers: SourceRouter[] = [];

  beforeAll(async () => {
    echo = net.createServer((socket) => {
      socket.on("error", () => undefined); // the proxy resets its side when the client goes
      socket.pipe(socket);
    });
    await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve));
    echoAddress = `127.0.0.1:${(echo.address() as net.AddressInfo).port}`;
  });
  beforeEach(async () => {
    mine = await TcpProxy.start({ name: "me→echo", target: echoAddress, listen: false });
    fallback = await TcpProxy.start({ name: "other→echo", target: echoAddress, listen: false });
  });
  afterEach(async () => {
    await Promise.all(routers.map((r) => r.close()));
    routers = [];
    await Promise.all([mine.close(), fallback.close()]);
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => echo.close(() => resolve()));
  });

  async function router(sources: ReadonlyMap<number, string>): Promise<SourceRouter> {
    const started = await SourceRouter.start({ name: "→echo", sources: () => sources, routes: new Map([["me", mine]]), fallback });
    routers.push(started);
    return started;
  }

  /** Sends `text` and resolves with what came back, or "reset" / "closed" when the connection ended without it. */
  function roundTrip(address: string, text: string): Promise<string> {
    const port = Number(address.slice(address.lastIndexOf(":") + 1));
    return new Promise((resolve) => {
      const socket = net.connect({ host: "127.0.0.1", port });
      let received = "";
      socket.on("connect", () => socket.write(text));
      socket.on("data", (chunk: Buffer) => {
        received += chunk.toString();
        if (received === text) {
          socket.destroy();
          resolve(received);
        }
      });
      socket.on("error", () => resolve("reset"));
      socket.on("close", () => resolve("closed"));
    });
  }

  test("a connection from a known process goes through that process's link, and a cut of that link stops it", async () => {
    const r = await router(new Map([[process.pid, "me"]]));
    expect(await roundTrip(r.address, "hello")).toBe("hello");
    expect(r.stats).toEqual({ routed: 1, unidentified: 0 });
    expect(mine.stats.connectionsAccepted).toBe(1);
    expect(fallback.stats.connectionsAccepted).toBe(0);
    mine.cut();
    expect(await roundTrip(r.address, "cut?")).toBe("reset");
    expect(mine.stats.connectionsRefused).toBe(1);
    mine.heal();
    expect(await roundTrip(r.address, "healed")).toBe("healed");
  });

  test("a connection from an unknown process goes through the fallback", async () => {
    const r = await router(new Map([[process.pid + 1_000_000, "me"]]));
    mine.cut();
    expect(await roundTrip(r.address, "anyone")).toBe("anyone");
    expect(r.stats).toEqual({ routed: 0, unidentified: 1 });
    expect(fallback.stats.connectionsAccepted).toBe(1);
  });
});
