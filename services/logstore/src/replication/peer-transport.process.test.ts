import { credentials, Server, ServerCredentials, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { ReplicationService } from "@logplayer/proto";
import type { Message } from "@logplayer/raft";
import { waitFor } from "@logplayer/testing";
import { PeerTransport } from "./peer-transport";
import type { RaftIdentity } from "./raft-state-file";
import { createReplicationService } from "./replication-service";

// The peer transport against real gRPC servers on loopback: ordering on the stream, reopening after the
// peer restarts, and a clear refusal from a peer that runs the older protocol (unary Step only).

const LEADER: RaftIdentity = { clusterId: "c1", replicaId: 1, peersHash: "h1", clusterLimits: "" };
const FOLLOWER: RaftIdentity = { ...LEADER, replicaId: 2 };
const WAIT_MS = 20_000;

function heartbeat(term: bigint): Message {
  return { type: "heartbeat", from: 1, to: 2, term, commit: 0n };
}

async function listen(service: UntypedServiceImplementation, port = 0): Promise<{ server: Server; port: number }> {
  const server = new Server();
  server.addService(ReplicationService, service);
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, p) => (err === null ? resolve(p) : reject(err))),
  );
  return { server, port: bound };
}

function transportTo(port: number, refusals: string[]): PeerTransport {
  return new PeerTransport({
    identity: LEADER,
    peers: [
      { id: 1, address: "127.0.0.1:1" },
      { id: 2, address: `127.0.0.1:${port}` },
    ],
    messageBytesMax: 4 * 1024 * 1024,
    peerQueueMessagesMax: 4096,
    peerStreamBytesMax: 1024 * 1024,
    peerRpcTimeoutMs: 2_000,
    channelCredentials: credentials.createInsecure(),
    onRefused: (text) => refusals.push(text),
    onSnapshot: () => {},
  });
}

function followerService(stepped: Message[]): UntypedServiceImplementation {
  return createReplicationService(
    FOLLOWER,
    (message) => stepped.push(message),
    () => {},
    null,
    () => ({ state: "voter", term: 0n, lastIndex: 0n, commit: 0n }),
  );
}

describe("PeerTransport over StepStream", () => {
  it("delivers every message in the order sent, and reopens the stream after the peer restarts", async () => {
    const stepped: Message[] = [];
    const first = await listen(followerService(stepped));
    const refusals: string[] = [];
    const transport = transportTo(first.port, refusals);
    let second: Server | undefined;
    try {
      for (let term = 1n; term <= 500n; term++) transport.send([heartbeat(term)]);
      await waitFor("500 messages stepped", () => stepped.length === 500, { timeoutMs: WAIT_MS });
      expect(stepped.map((message) => message.term)).toEqual(Array.from({ length: 500 }, (_, i) => BigInt(i + 1)));

      first.server.forceShutdown();
      const restarted = await listen(followerService(stepped), first.port);
      second = restarted.server;
      // Messages sent while the stream broke may be lost (Raft resends); later ones arrive once it is reopened.
      let term = 1_000n;
      await waitFor(
        "a message after the restart",
        () => {
          transport.send([heartbeat(term++)]);
          return stepped.some((message) => message.term >= 1_000n);
        },
        { timeoutMs: WAIT_MS },
      );
      const after = stepped.filter((message) => message.term >= 1_000n).map((message) => message.term);
      expect(after).toEqual([...after].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
      expect(refusals).toEqual([]);
    } finally {
      transport.close();
      first.server.forceShutdown();
      second?.forceShutdown();
    }
  });

  it("a peer that serves only the unary Step (older code) gets a clear refusal in the log, not a hang", async () => {
    const stepped: Message[] = [];
    const { stepStream: _notServed, ...older } = followerService(stepped);
    const { server, port } = await listen(older);
    const refusals: string[] = [];
    const transport = transportTo(port, refusals);
    try {
      transport.send([heartbeat(1n)]);
      await waitFor("the refusal", () => refusals.length > 0, { timeoutMs: WAIT_MS });
      expect(refusals[0]).toContain(`replica 2 at 127.0.0.1:${port} does not serve Replication.StepStream`);
      expect(refusals[0]).toContain("upgrade every replica");
      expect(stepped).toEqual([]);
    } finally {
      transport.close();
      server.forceShutdown();
    }
  });
});
