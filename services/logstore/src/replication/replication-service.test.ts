import { EventEmitter } from "node:events";
import type { sendUnaryData, ServerErrorResponse, ServerReadableStream, StatusObject } from "@grpc/grpc-js";
import { Registry, silentLogger, Status } from "@logplayer/common";
import type { StepRequest, StepResponse } from "@logplayer/proto";
import type { Message } from "@logplayer/raft";
import { RefusalLog } from "@logplayer/tls";
import type { RaftIdentity } from "./raft-state-file";
import { createReplicationService } from "./replication-service";
import { messageToWire } from "./wire";

/** What the handler answered: null for OK. */
type Answer = Partial<StatusObject> | ServerErrorResponse | null;

const IDENTITY: RaftIdentity = { clusterId: "c1", replicaId: 1, peersHash: "h1", clusterLimits: "" };

/** A server-side StepStream call without a network: requests are emitted as "data". */
class FakeStreamCall extends EventEmitter {
  destroyed = false;
  getPeer(): string {
    return "ipv4:127.0.0.1:5555";
  }
  destroy(): void {
    this.destroyed = true;
  }
}

function heartbeat(from: number, term: bigint): Message {
  return { type: "heartbeat", from, to: 1, term, commit: 0n };
}

function request(messages: readonly Message[], overrides: Partial<StepRequest> = {}): StepRequest {
  return {
    clusterId: IDENTITY.clusterId,
    peersHash: IDENTITY.peersHash,
    clusterLimits: "",
    messages: messages.map((message) => messageToWire(message as never)),
    ...overrides,
  };
}

/** Opens a StepStream on a service whose certificate check says the caller is replica `senderName` (null: insecure). */
function openStream(senderName: string | null): {
  call: FakeStreamCall;
  stepped: Message[];
  answers: Answer[];
} {
  const stepped: Message[] = [];
  const answers: Answer[] = [];
  const refusals = new RefusalLog("logstore", new Registry(), silentLogger());
  const service = createReplicationService(
    IDENTITY,
    (message) => stepped.push(message),
    () => {},
    senderName === null ? null : { senderOf: () => ({ role: "logstore-replica", name: senderName }), refusals },
    () => ({ state: "voter", term: 0n, lastIndex: 0n, commit: 0n }),
  );
  const call = new FakeStreamCall();
  const callback: sendUnaryData<StepResponse> = (error) => answers.push(error);
  service.stepStream(call as unknown as ServerReadableStream<StepRequest, StepResponse>, callback);
  return { call, stepped, answers };
}

describe("Replication.StepStream (receiver)", () => {
  it("steps the messages of every request in the order they arrive, and answers OK when the sender ends the stream", () => {
    const { call, stepped, answers } = openStream("2");
    call.emit("data", request([heartbeat(2, 1n), heartbeat(2, 2n)]));
    call.emit("data", request([heartbeat(2, 3n)]));
    expect(stepped.map((message) => message.term)).toEqual([1n, 2n, 3n]);
    expect(answers).toEqual([]);
    call.emit("end");
    expect(answers).toEqual([null]);
  });

  it("a request holding one message from another replica is refused whole and ends the stream; nothing after it is stepped", () => {
    const { call, stepped, answers } = openStream("2");
    call.emit("data", request([heartbeat(2, 1n)]));
    call.emit("data", request([heartbeat(2, 2n), heartbeat(3, 9n)]));
    call.emit("data", request([heartbeat(2, 3n)]));
    expect(stepped.map((message) => message.term)).toEqual([1n]);
    expect(answers).toHaveLength(1);
    expect(answers[0]?.code).toBe(Status.PERMISSION_DENIED);
    expect(answers[0]?.details).toContain("replica certificate 2 may not send a Raft message from replica 3");
    expect(call.destroyed).toBe(true);
  });

  it("a request for another cluster ends the stream with FAILED_PRECONDITION and steps nothing", () => {
    const { call, stepped, answers } = openStream(null);
    call.emit("data", request([heartbeat(2, 1n)], { clusterId: "other" }));
    call.emit("data", request([heartbeat(2, 2n)]));
    expect(stepped).toEqual([]);
    expect(answers[0]?.code).toBe(Status.FAILED_PRECONDITION);
    expect(answers[0]?.details).toContain('cluster mismatch: sender has cluster "other"');
  });

  it("a stream that breaks answers nothing and steps nothing more", () => {
    const { call, stepped, answers } = openStream("2");
    call.emit("data", request([heartbeat(2, 1n)]));
    call.emit("error", new Error("connection reset"));
    call.emit("data", request([heartbeat(2, 2n)]));
    expect(stepped.map((message) => message.term)).toEqual([1n]);
    expect(answers).toEqual([]);
  });
});
