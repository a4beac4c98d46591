import { type ServerReadableStream, type ServerUnaryCall, type sendUnaryData, status } from "@grpc/grpc-js";
import { failedPrecondition, LpError, Status } from "@logplayer/common";
import {
  type InstallSnapshotResponse,
  type SnapshotChunk,
  type ProbeRequest,
  type ProbeResponse,
  ReplicaStartState,
  type ReplicationServer,
  type StepRequest,
  type StepResponse,
} from "@logplayer/proto";
import type { Message } from "@logplayer/raft";
import type { PeerIdentity, RefusalLog } from "@logplayer/tls";
import type { ProbeAnswer } from "./blank-start";
import { LIMITS_MISMATCH } from "./peers";
import type { RaftIdentity } from "./raft-state-file";
import { messageFromWire } from "./wire";
import { SnapshotAssembler, type ReceivedSnapshot, type SnapshotTransferLimits } from "./snapshot-transfer";

/** Where InstallSnapshot streams go, once assembled and checked (see snapshot-transfer.ts). */
export interface SnapshotReceiver {
  readonly limits: SnapshotTransferLimits;
  /** Stages the snapshot and steps its message into the core. */
  readonly receive: (snapshot: ReceivedSnapshot) => void;
}

const STEP_METHOD = "/logplayer.v1.Replication/Step";
const STEP_STREAM_METHOD = "/logplayer.v1.Replication/StepStream";

/**
 * With mTLS: who sent a Step call or opened a StepStream, as its certificate says. The policy already
 * let only logstore-replica certificates in; this check binds each message's
 * `from` to the certificate, so one replica cannot speak for another.
 */
export interface StepSenderCheck {
  readonly senderOf: (
    call:
      | ServerUnaryCall<StepRequest, StepResponse>
      | ServerReadableStream<StepRequest, StepResponse>
      | ServerReadableStream<SnapshotChunk, InstallSnapshotResponse>,
  ) => PeerIdentity | null;
  readonly refusals: RefusalLog;
}

/**
 * The Replication gRPC service: checks the sender's identity (its certificate
 * names the replica every message is from; cluster id and mode, see REPLICATED_CLUSTER_MODE), then
 * hands each message addressed to this replica to `step`. Raft messages come
 * on StepStream (one long-lived stream per peer, each request a batch) or, from
 * older replicas, in unary Step calls; both are checked alike. A batch with one
 * message from another replica is refused whole, before any message is stepped
 * (on a stream, the refusal ends the stream with its status).
 * Messages of an unknown type or for another replica are dropped, like a lossy network would.
 * Probe answers what this replica holds (`probe`; the policy admits only replica certificates).
 */
export function createReplicationService(
  identity: RaftIdentity,
  step: (message: Message) => void,
  onRefused: (text: string) => void,
  senderCheck: StepSenderCheck | null,
  /** Answers a probe from replica `from`, blank or not (its certificate admits only replicas; the rest is what it says). */
  probe: (from: number, askerBlank: boolean) => ProbeAnswer,
  snapshots?: SnapshotReceiver,
): ReplicationServer {
  let receivingSnapshot = false;
  const mismatch = (clusterId: string, peersHash: string, clusterLimits: string): string | null => {
    if (clusterId !== identity.clusterId || peersHash !== identity.peersHash) {
      return (
        `cluster mismatch: sender has cluster "${clusterId.slice(0, CLUSTER_LIMITS_TEXT_MAX)}" mode "${peersHash.slice(0, 64)}", ` +
        `replica ${identity.replicaId} has cluster "${identity.clusterId}" mode "${identity.peersHash}"`
      );
    }
    // An empty value is a sender that does not say (older code): not checked.
    const ours = identity.clusterLimits ?? "";
    if (clusterLimits === "" || ours === "" || clusterLimits === ours) return null;
    return (
      `${LIMITS_MISMATCH}: the sender has ${clusterLimits.slice(0, CLUSTER_LIMITS_TEXT_MAX)}, replica ${identity.replicaId} has ` +
      `${ours} (cluster.json); every replica of a cluster must be created with the same limits`
    );
  };
  /**
   * Checks one batch (the sender's certificate against every message's
   * `from`, then cluster id, peer list and limits) and steps its messages
   * addressed to this replica; the error to answer when refused whole.
   */
  const refuseOrStep = (request: StepRequest, sender: PeerIdentity | null, peer: string, method: string): LpError | null => {
    const { clusterId, peersHash, messages, clusterLimits } = request;
    if (senderCheck !== null) {
      const forged = messages.find((wire) => sender === null || String(wire.from) !== sender.name);
      if (sender === null || forged !== undefined) {
        const reason =
          sender === null
            ? "Step needs a logstore-replica certificate"
            : `replica certificate ${sender.name} may not send a Raft message from replica ${forged!.from}`;
        senderCheck.refusals.record({
          method,
          code: status.PERMISSION_DENIED,
          peer,
          identity: sender,
          reason,
          reasonLabel: "sender_mismatch",
        });
        return new LpError(Status.PERMISSION_DENIED, reason);
      }
    }
    const reason = mismatch(clusterId, peersHash, clusterLimits);
    if (reason !== null) {
      onRefused(`refused Raft messages: ${reason}`);
      return failedPrecondition(reason);
    }
    for (const wire of messages) {
      const message = messageFromWire(wire);
      if (message === undefined || message.to !== identity.replicaId) continue;
      step(message);
    }
    return null;
  };
  return {
    step: (call: ServerUnaryCall<StepRequest, StepResponse>, callback: sendUnaryData<StepResponse>) => {
      const sender = senderCheck?.senderOf(call) ?? null;
      const refusal = refuseOrStep(call.request, sender, call.getPeer(), STEP_METHOD);
      if (refusal !== null) {
        callback(refusal.toServiceError());
        return;
      }
      callback(null, {});
    },
    stepStream: (call: ServerReadableStream<StepRequest, StepResponse>, callback: sendUnaryData<StepResponse>) => {
      // The certificate is the connection's: read once, checked against every message of every request.
      const sender = senderCheck?.senderOf(call) ?? null;
      const peer = call.getPeer();
      let ended = false;
      const end = (error: LpError | null): void => {
        if (ended) return;
        ended = true;
        if (error === null) {
          callback(null, {});
          return;
        }
        callback(error.toServiceError());
        call.destroy();
      };
      call.on("data", (request: StepRequest) => {
        if (ended) return;
        const refusal = refuseOrStep(request, sender, peer, STEP_STREAM_METHOD);
        if (refusal !== null) end(refusal);
      });
      call.on("end", () => end(null));
      // The sender went away: what it sent is stepped already; nothing to answer.
      call.on("error", () => {
        ended = true;
      });
    },
    installSnapshot: (
      call: ServerReadableStream<SnapshotChunk, InstallSnapshotResponse>,
      callback: sendUnaryData<InstallSnapshotResponse>,
    ) => {
      if (snapshots === undefined || receivingSnapshot) {
        const error =
          snapshots === undefined
            ? new LpError(Status.UNAVAILABLE, "this replica takes no snapshot while it starts")
            : new LpError(Status.RESOURCE_EXHAUSTED, "this replica is already receiving a snapshot");
        call.destroy();
        callback(error.toServiceError());
        return;
      }
      const sender = senderCheck?.senderOf(call) ?? null;
      if (senderCheck !== null && sender === null) {
        call.destroy();
        callback(new LpError(Status.PERMISSION_DENIED, "InstallSnapshot needs a logstore-replica certificate").toServiceError());
        return;
      }
      receivingSnapshot = true;
      const assembler = new SnapshotAssembler(identity, snapshots.limits, sender?.name ?? null);
      let answered = false;
      const answer = (error: Error | null): void => {
        if (answered) return;
        answered = true;
        receivingSnapshot = false;
        if (error === null) {
          callback(null, { accepted: true });
          return;
        }
        call.destroy();
        const coded = LpError.is(error) ? error : new LpError(Status.INTERNAL, error.message);
        onRefused(`refused a snapshot: ${coded.message}`);
        callback(coded.toServiceError());
      };
      call.on("data", (chunk: SnapshotChunk) => {
        if (answered) return;
        try {
          assembler.add(chunk);
        } catch (err: unknown) {
          answer(err instanceof Error ? err : new Error(String(err)));
        }
      });
      call.on("end", () => {
        if (answered) return;
        try {
          snapshots.receive(assembler.finish());
          answer(null);
        } catch (err: unknown) {
          answer(err instanceof Error ? err : new Error(String(err)));
        }
      });
      call.on("error", () => answer(new LpError(Status.CANCELLED, "the snapshot stream broke")));
    },
    probe: (call: ServerUnaryCall<ProbeRequest, ProbeResponse>, callback: sendUnaryData<ProbeResponse>) => {
      const reason = mismatch(call.request.clusterId, call.request.peersHash, call.request.clusterLimits);
      if (reason !== null) {
        onRefused(`refused a probe from replica ${call.request.from}: ${reason}`);
        callback(failedPrecondition(reason).toServiceError());
        return;
      }
      const answer = probe(call.request.from, call.request.askerBlank);
      callback(null, {
        replicaId: identity.replicaId,
        state: STATE_TO_WIRE[answer.state],
        term: answer.term,
        lastIndex: answer.lastIndex,
        commit: answer.commit,
      });
    },
  };
}

/** What of a sender's limits text a refusal quotes (the text comes from the network). */
const CLUSTER_LIMITS_TEXT_MAX = 256;

const STATE_TO_WIRE: Readonly<Record<ProbeAnswer["state"], ReplicaStartState>> = {
  blank: ReplicaStartState.REPLICA_START_STATE_BLANK,
  voter: ReplicaStartState.REPLICA_START_STATE_VOTER,
  rejoining: ReplicaStartState.REPLICA_START_STATE_REJOINING,
};

/** A peer's Probe reply, checked: undefined when it is not a reply a replica of this cluster could give. */
export function probeAnswerFromWire(response: ProbeResponse, expectedId: number): ProbeAnswer | undefined {
  if (response.replicaId !== expectedId) return undefined;
  const state =
    response.state === ReplicaStartState.REPLICA_START_STATE_BLANK
      ? "blank"
      : response.state === ReplicaStartState.REPLICA_START_STATE_VOTER
        ? "voter"
        : response.state === ReplicaStartState.REPLICA_START_STATE_REJOINING
          ? "rejoining"
          : undefined;
  if (state === undefined || response.term < 0n || response.lastIndex < 0n || response.commit > response.lastIndex) return undefined;
  return { state, term: response.term, lastIndex: response.lastIndex, commit: response.commit };
}
