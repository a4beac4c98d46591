import { type ServerUnaryCall, type sendUnaryData, status } from "@grpc/grpc-js";
import { failedPrecondition, LpError, Status } from "@logplayer/common";
import type { ReplicationServer, StepRequest, StepResponse } from "@logplayer/proto";
import type { Message } from "@logplayer/raft";
import type { PeerIdentity, RefusalLog } from "@logplayer/tls";
import type { RaftIdentity } from "./raft-state-file";
import { messageFromWire } from "./wire";

const STEP_METHOD = "/logplayer.v1.Replication/Step";

/**
 * With mTLS: who sent a Step call, as its certificate says. The policy already
 * let only logstore-replica certificates in; this check binds each message's
 * `from` to the certificate, so one replica cannot speak for another.
 */
export interface StepSenderCheck {
  readonly senderOf: (call: ServerUnaryCall<StepRequest, StepResponse>) => PeerIdentity | null;
  readonly refusals: RefusalLog;
}

/**
 * The Replication gRPC service: checks the sender's identity (its certificate
 * names the replica every message is from; cluster id and peer-list hash), then
 * hands each message addressed to this replica to `step`. A call with one
 * message from another replica is refused whole, before any message is stepped.
 * Messages of an unknown type or for another replica are dropped, like a lossy network would.
 */
export function createReplicationService(
  identity: RaftIdentity,
  step: (message: Message) => void,
  onRefused: (text: string) => void,
  senderCheck: StepSenderCheck | null,
): ReplicationServer {
  return {
    step: (call: ServerUnaryCall<StepRequest, StepResponse>, callback: sendUnaryData<StepResponse>) => {
      const { clusterId, peersHash, messages } = call.request;
      if (senderCheck !== null) {
        const sender = senderCheck.senderOf(call);
        const forged = messages.find((wire) => sender === null || String(wire.from) !== sender.name);
        if (sender === null || forged !== undefined) {
          const reason =
            sender === null
              ? "Step needs a logstore-replica certificate"
              : `replica certificate ${sender.name} may not send a Raft message from replica ${forged!.from}`;
          senderCheck.refusals.record({
            method: STEP_METHOD,
            code: status.PERMISSION_DENIED,
            peer: call.getPeer(),
            identity: sender,
            reason,
            reasonLabel: "sender_mismatch",
          });
          callback(new LpError(Status.PERMISSION_DENIED, reason).toServiceError());
          return;
        }
      }
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
