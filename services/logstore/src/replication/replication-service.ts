import type { ServerUnaryCall, sendUnaryData } from "@grpc/grpc-js";
import { failedPrecondition } from "@logplayer/common";
import type { ReplicationServer, StepRequest, StepResponse } from "@logplayer/proto";
import type { Message } from "@logplayer/raft";
import type { RaftIdentity } from "./raft-state-file";
import { messageFromWire } from "./wire";

/**
 * The Replication gRPC service: checks the sender's identity (cluster id and
 * peer-list hash), then hands each message addressed to this replica to
 * `step`. Messages of an unknown type or for another replica are dropped, like
 * a lossy network would.
 */
export function createReplicationService(
  identity: RaftIdentity,
  step: (message: Message) => void,
  onRefused: (text: string) => void,
): ReplicationServer {
  return {
    step: (call: ServerUnaryCall<StepRequest, StepResponse>, callback: sendUnaryData<StepResponse>) => {
      const { clusterId, peersHash, messages } = call.request;
      if (clusterId !== identity.clusterId || peersHash !== identity.peersHash) {
        const reason =
          `cluster/peer mismatch: sender has cluster "${clusterId}" peers hash ${peersHash}, ` +
          `replica ${identity.replicaId} has cluster "${identity.clusterId}" peers hash ${identity.peersHash}`;
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
  };
}
