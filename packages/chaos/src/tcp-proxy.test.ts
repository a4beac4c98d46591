import net from "node:net";
import * as grpc from "@grpc/grpc-js";
import { waitFor } from "@logplayer/testing";
import { TcpProxy } from "./tcp-proxy";

// A one-method gRPC service on raw bytes: "hang" is never answered (a call
// that stays in flight), anything else is echoed.
const echoMethod: grpc.MethodDefinition<Buffer, Buffer> = {
  path: "/chaos.test.Echo/Echo",
  requestStream: false,
  responseStream: false,
  requestSerialize: (b: Buffer) => b,
  requestDeserialize: (b: Buffer) => b,
  responseSerialize: (b: Buffer) => b,
  responseDeserialize: (b: Buffer) => b,
};
const echoService: grpc.ServiceDefinition = { echo: echoMethod };
const EchoClient = grpc.makeGenericClientConstructor(echoService, "Echo");

let server: grpc.Server;
let serverAddress: string;
let proxy: TcpProxy;
let client: grpc.Client;
/** "hang" calls the server has received (and will never answer). */
let hangsReceived = 0;

function echo(text: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      echoMethod.path,
      echoMethod.requestSerialize,
      echoMethod.responseDeserialize,
      Buffer.from(text),
      new grpc.Metadata({ waitForReady: true }),
      { deadline: Date.now() + timeoutMs },
      (err: grpc.ServiceError | null, value?: Buffer) => (err ? reject(err) : resolve(value!.toString())),
    );
  });
}

async function echoWithinAttempts(text: string, attemptsMax: number): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await echo(text, 2_000);
    } catch (err: unknown) {
      if (attempt >= attemptsMax) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Resolves with how a raw TCP connection through the proxy ended, after sending bytes and waiting for any reply. */
function rawConnection(address: string): Promise<{ bytesReceived: number; ended: "error" | "close" }> {
  const [host, port] = [address.slice(0, address.lastIndexOf(":")), Number(address.slice(address.lastIndexOf(":") + 1))];
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let bytesReceived = 0;
    socket.on("data", (chunk: Buffer) => (bytesReceived += chunk.length));
    socket.on("connect", () => socket.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
    socket.on("error", () => resolve({ bytesReceived, ended: "error" }));
    socket.on("close", () => resolve({ bytesReceived, ended: "close" }));
  });
}

beforeAll(async () => {
  server = new grpc.Server();
  server.addService(echoService, {
    echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      if (call.request.toString() === "hang") hangsReceived += 1;
      else callback(null, call.request);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  serverAddress = `127.0.0.1:${port}`;
  proxy = await TcpProxy.start({ name: "test→echo", target: serverAddress, bufferBytesMax: 4096 });
  client = new EchoClient(proxy.address, grpc.credentials.createInsecure(), {
    "grpc.initial_reconnect_backoff_ms": 50,
    "grpc.max_reconnect_backoff_ms": 200,
  });
});

afterAll(async () => {
  client.close();
  await proxy.close();
  server.forceShutdown();
});

test("data passes through a healed proxy", async () => {
  await expect(echo("hello", 10_000)).resolves.toBe("hello");
  expect(proxy.stats.bytesForwarded).toBeGreaterThan(0);
  expect(proxy.openConnections).toBe(1);
});

test("a cut fails the call in flight at once and refuses new connections; heal lets calls through again", async () => {
  await expect(echo("warm", 10_000)).resolves.toBe("warm");
  // A long deadline: the call must fail because the link broke, not because time ran out.
  const hangsBefore = hangsReceived;
  const inFlight = echo("hang", 60_000);
  // Cut only once the call is in flight: the server has it and will never answer.
  await waitFor("the server to hold the call", () => hangsReceived > hangsBefore, { timeoutMs: 10_000, intervalMs: 10 });
  proxy.cut();
  await expect(inFlight).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  expect(proxy.openConnections).toBe(0);
  expect(proxy.stats.connectionsCut).toBeGreaterThanOrEqual(1);

  const refusedBefore = proxy.stats.connectionsRefused;
  const raw = await rawConnection(proxy.address);
  expect(raw.bytesReceived).toBe(0);
  expect(proxy.stats.connectionsRefused).toBe(refusedBefore + 1);
  await expect(echo("while cut", 500)).rejects.toMatchObject({ code: expect.any(Number) });
  expect(proxy.openConnections).toBe(0);

  proxy.heal();
  // The channel may still be failing its last (refused) attempt; new calls then get through.
  await expect(echoWithinAttempts("healed", 10)).resolves.toBe("healed");
  expect(proxy.openConnections).toBe(1);
});

test("a stall holds a call without failing it; unstall lets it finish", async () => {
  await expect(echoWithinAttempts("before", 10)).resolves.toBe("before");
  const connectionsBefore = proxy.stats.connectionsAccepted;
  proxy.stall();
  let settled = false;
  const held = echo("held", 30_000).finally(() => (settled = true));
  // Absence can only be observed over some time: nothing may arrive while stalled.
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(settled).toBe(false);
  expect(proxy.openConnections).toBe(1);
  proxy.unstall();
  await expect(held).resolves.toBe("held");
  // The same connection carried it: a stall closes nothing.
  expect(proxy.stats.connectionsAccepted).toBe(connectionsBefore);
  expect(proxy.stats.stalls).toBe(1);
});

test("the proxy reaches nothing behind it when the target is down, and the caller sees UNAVAILABLE", async () => {
  const deadTarget = await TcpProxy.start({ name: "test→nowhere", target: "127.0.0.1:1" });
  const deadClient = new EchoClient(deadTarget.address, grpc.credentials.createInsecure());
  try {
    const error = await new Promise<grpc.ServiceError>((resolve) =>
      deadClient.makeUnaryRequest(
        echoMethod.path,
        echoMethod.requestSerialize,
        echoMethod.responseDeserialize,
        Buffer.from("x"),
        new grpc.Metadata(),
        { deadline: Date.now() + 5_000 },
        (err: grpc.ServiceError | null) => resolve(err!),
      ),
    );
    expect(error.code).toBe(grpc.status.UNAVAILABLE);
  } finally {
    deadClient.close();
    await deadTarget.close();
  }
});

test("a large message passes through a small relay buffer intact", async () => {
  const big = "x".repeat(1024 * 1024);
  await expect(echo(big, 20_000)).resolves.toHaveLength(big.length);
});
