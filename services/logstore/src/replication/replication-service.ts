import type { ServerUnaryCall, sendUnaryData } from "@grpc/grpc-js";
import { failedPrecondition } from "@logplayer/common";
import {
  ReplicaStartState,
  type ProbeRequest,
  type ProbeResponse,
  type ReplicationServer,
  type StepRequest,
  type StepResponse,
} from "@logplayer/proto";
import type { Message } from "@logplayer/raft";
import type { ProbeAnswer } from "./blank-start";
import type { RaftIdentity } from "./raft-state-file";
import { messageFromWire } from "./wire";

/**
 * The Replication gRPC service: checks the sender's identity (cluster id and
 * peer-list hash), then hands each message addressed to this replica to
 * `step`. Messages of an unknown type or for another replica are dropped, like
 * a lossy network would. Probe answers what this replica holds (`probe`).
 */
export function createReplicationService(
  identity: RaftIdentity,
  step: (message: Message) => void,
  onRefused: (text: string) => void,
  probe: () => ProbeAnswer,
): ReplicationServer {
  const mismatch = (clusterId: string, peersHash: string): string | null =>
    clusterId === identity.clusterId && peersHash === identity.peersHash
      ? null
      : `cluster/peer mismatch: sender has cluster "${clusterId}" peers hash ${peersHash}, ` +
        `replica ${identity.replicaId} has cluster "${identity.clusterId}" peers hash ${identity.peersHash}`;
  return {
    step: (call: ServerUnaryCall<StepRequest, StepResponse>, callback: sendUnaryData<StepResponse>) => {
      const { clusterId, peersHash, messages } = call.request;
      const reason = mismatch(clusterId, peersHash);
      if (reason !== null) {
        onRefused(`refused Raft messages: ${reason}`);
        callback(failedPrecondition(reason).toServiceError());
        return;
      }
      for (const wire of messages) {
        const message = messageFromWire(wire);
        if (message === undefined || message.to !== identity.replicaId) continue;
        step(message);
      }
      callback(null, {});
    },
    probe: (call: ServerUnaryCall<ProbeRequest, ProbeResponse>, callback: sendUnaryData<ProbeResponse>) => {
      const reason = mismatch(call.request.clusterId, call.request.peersHash);
      if (reason !== null) {
        onRefused(`refused a probe from replica ${call.request.from}: ${reason}`);
        callback(failedPrecondition(reason).toServiceError());
        return;
      }
      const answer = probe();
      callback(null, { replicaId: identity.replicaId, state: STATE_TO_WIRE[answer.state], term: answer.term, lastIndex: answer.lastIndex });
    },
  };
}

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
  if (state === undefined || response.term < 0n || response.lastIndex < 0n) return undefined;
  return { state, term: response.term, lastIndex: response.lastIndex };
}
