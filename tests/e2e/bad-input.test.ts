// Bad input against a running cluster: a clear error with the right status,
// nothing written, and every service keeps serving afterwards.
import net from "node:net";
import { Metadata, status as Status, type ServiceError } from "@grpc/grpc-js";
import type { LocalCluster } from "@logplayer/cluster";
import { mutation, type LogPlayerClient } from "@logplayer/client";
import { LogStoreClient, MutationKind, PROTOCOL_VERSION, type AppendRequest, type AppendResponse } from "@logplayer/proto";
import { channelCredentialsFor } from "@logplayer/tls";
import { startTestCluster } from "./harness";

function append(raw: LogStoreClient, request: AppendRequest): Promise<AppendResponse> {
  return new Promise((resolve, reject) =>
    raw.append(request, new Metadata(), { deadline: Date.now() + 5000 }, (err: ServiceError | null, res?: AppendResponse) =>
      err ? reject(err) : resolve(res!),
    ),
  );
}

function sendGarbage(address: string, payload: Buffer): Promise<void> {
  const [host, port] = [address.slice(0, address.lastIndexOf(":")), Number(address.slice(address.lastIndexOf(":") + 1))];
  return new Promise((resolve) => {
    const socket = net.connect({ host, port }, () => socket.write(payload));
    socket.setTimeout(3000, () => socket.destroy());
    socket.on("error", () => resolve());
    socket.on("close", () => resolve());
    socket.on("data", () => undefined);
    setTimeout(() => socket.end(), 200).unref();
  });
}

describe("bad input", () => {
  let cluster: LocalCluster;
  let client: LogPlayerClient;
  let raw: LogStoreClient;

  beforeAll(async () => {
    cluster = await startTestCluster("bad-input");
    client = await cluster.connectClient();
    raw = new LogStoreClient(cluster.endpoints.logstore, channelCredentialsFor(cluster.clientSecurity));
    await client.commit([mutation.put("before", "x")]);
  });
  afterAll(async () => {
    raw?.close();
    client?.close();
    await cluster?.stop();
  });

  const put = (key: string, bytes = 1) => ({
    kind: MutationKind.MUTATION_KIND_PUT,
    key,
    value: Buffer.alloc(bytes, 1),
    delta: 0n,
  });
  const base = { commitTimeNs: 0n, clientId: "bad-input", clientSeq: 0n };

  it.each([
    ["an empty transaction", { ...base, txn: { mutations: [] } }, Status.INVALID_ARGUMENT],
    ["no transaction at all", { ...base, txn: undefined }, Status.INVALID_ARGUMENT],
    ["an unknown mutation kind", { ...base, txn: { mutations: [{ ...put("k"), kind: 42 as MutationKind }] } }, Status.INVALID_ARGUMENT],
    ["an empty key", { ...base, txn: { mutations: [put("")] } }, Status.INVALID_ARGUMENT],
    ["a key with a control character", { ...base, txn: { mutations: [put("a\u0001b")] } }, Status.INVALID_ARGUMENT],
    [
      "an oversized entry",
      { ...base, txn: { mutations: Array.from({ length: 8 }, (_, i) => put(`big${i}`, 200 * 1024)) } },
      Status.RESOURCE_EXHAUSTED,
    ],
  ])("Append with %s is refused and writes nothing", async (_what, request, code) => {
    const before = await client.logStoreStatus();
    await expect(append(raw, request as AppendRequest)).rejects.toMatchObject({ code });
    const after = await client.logStoreStatus();
    expect(after.lastLsn).toBe(before.lastLsn);
    expect(after.commitLsn).toBe(before.commitLsn);
  });

  it("garbage bytes on every port leave every service serving", async () => {
    const addresses = [cluster.endpoints.logstore, ...cluster.endpoints.shards];
    for (const address of addresses) {
      await sendGarbage(address, Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
      await sendGarbage(address, Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Buffer.alloc(4096, 0xff)]));
      await sendGarbage(address, Buffer.from(Array.from({ length: 2048 }, (_, i) => (i * 7919) % 256)));
    }
    const { lsn } = await client.commit([mutation.put("after-garbage", "ok"), mutation.put("after-garbage-2", "ok")]);
    const read = await client.get("after-garbage", { minLsn: lsn });
    expect(read.value.toString()).toBe("ok");
    const status = await client.clusterStatus();
    for (const shard of status.shards) expect(shard.error).toBeUndefined();
  });

  it("a reader speaking another protocol version is refused with FAILED_PRECONDITION", async () => {
    const call = raw.read({ protocolVersion: PROTOCOL_VERSION + 1, fromLsn: 1n, toLsn: 0n, readerId: "old-peer" });
    const err = await new Promise<ServiceError>((resolve) => {
      call.on("error", (e: ServiceError) => resolve(e));
      call.on("data", () => undefined);
    });
    expect(err.code).toBe(Status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/protocol/i);
  });
});
