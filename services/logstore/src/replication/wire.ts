import { RaftMessageType, type RaftEntry, type RaftMessage } from "@logplayer/proto";
import type { Entry, Message, SnapshotMessage } from "@logplayer/raft";

/** What travels in Replication.Step: every message but a snapshot, which has its own stream (InstallSnapshot). */
export type StepMessage = Exclude<Message, SnapshotMessage>;

const TYPE_TO_WIRE: Record<StepMessage["type"], RaftMessageType> = {
  append: RaftMessageType.RAFT_MESSAGE_TYPE_APPEND,
  "append-response": RaftMessageType.RAFT_MESSAGE_TYPE_APPEND_RESPONSE,
  heartbeat: RaftMessageType.RAFT_MESSAGE_TYPE_HEARTBEAT,
  "heartbeat-response": RaftMessageType.RAFT_MESSAGE_TYPE_HEARTBEAT_RESPONSE,
  vote: RaftMessageType.RAFT_MESSAGE_TYPE_VOTE,
  "vote-response": RaftMessageType.RAFT_MESSAGE_TYPE_VOTE_RESPONSE,
  "pre-vote": RaftMessageType.RAFT_MESSAGE_TYPE_PRE_VOTE,
  "pre-vote-response": RaftMessageType.RAFT_MESSAGE_TYPE_PRE_VOTE_RESPONSE,
};

const EMPTY: Omit<RaftMessage, "type" | "from" | "to" | "term"> = {
  prevIndex: 0n,
  prevTerm: 0n,
  entries: [],
  commit: 0n,
  reject: false,
  index: 0n,
  hintIndex: 0n,
  hintTerm: 0n,
  lastIndex: 0n,
  lastTerm: 0n,
  rejoining: false,
};

export function messageToWire(message: StepMessage): RaftMessage {
  const base = { ...EMPTY, type: TYPE_TO_WIRE[message.type], from: message.from, to: message.to, term: message.term };
  switch (message.type) {
    case "append":
      return {
        ...base,
        prevIndex: message.prevIndex,
        prevTerm: message.prevTerm,
        commit: message.commit,
        entries: message.entries.map(entryToWire),
      };
    case "append-response":
      return {
        ...base,
        reject: message.reject,
        index: message.index,
        hintIndex: message.hintIndex,
        hintTerm: message.hintTerm,
        rejoining: message.rejoining === true,
      };
    case "heartbeat":
      return { ...base, commit: message.commit };
    case "heartbeat-response":
      return base;
    case "vote":
    case "pre-vote":
      return { ...base, lastIndex: message.lastIndex, lastTerm: message.lastTerm };
    case "vote-response":
    case "pre-vote-response":
      return { ...base, reject: message.reject };
  }
}

/** The core's message, or undefined for a type this version does not know (ignored, like a lost message). */
export function messageFromWire(wire: RaftMessage): Message | undefined {
  const base = { from: wire.from, to: wire.to, term: wire.term };
  switch (wire.type) {
    case RaftMessageType.RAFT_MESSAGE_TYPE_APPEND:
      return {
        ...base,
        type: "append",
        prevIndex: wire.prevIndex,
        prevTerm: wire.prevTerm,
        commit: wire.commit,
        entries: wire.entries.map(entryFromWire),
      };
    case RaftMessageType.RAFT_MESSAGE_TYPE_APPEND_RESPONSE:
      return {
        ...base,
        type: "append-response",
        reject: wire.reject,
        index: wire.index,
        hintIndex: wire.hintIndex,
        hintTerm: wire.hintTerm,
        ...(wire.rejoining ? { rejoining: true as const } : {}),
      };
    case RaftMessageType.RAFT_MESSAGE_TYPE_HEARTBEAT:
      return { ...base, type: "heartbeat", commit: wire.commit };
    case RaftMessageType.RAFT_MESSAGE_TYPE_HEARTBEAT_RESPONSE:
      return { ...base, type: "heartbeat-response" };
    case RaftMessageType.RAFT_MESSAGE_TYPE_VOTE:
      return { ...base, type: "vote", lastIndex: wire.lastIndex, lastTerm: wire.lastTerm };
    case RaftMessageType.RAFT_MESSAGE_TYPE_PRE_VOTE:
      return { ...base, type: "pre-vote", lastIndex: wire.lastIndex, lastTerm: wire.lastTerm };
    case RaftMessageType.RAFT_MESSAGE_TYPE_VOTE_RESPONSE:
      return { ...base, type: "vote-response", reject: wire.reject };
    case RaftMessageType.RAFT_MESSAGE_TYPE_PRE_VOTE_RESPONSE:
      return { ...base, type: "pre-vote-response", reject: wire.reject };
    default:
      return undefined;
  }
}

function entryToWire(entry: Entry): RaftEntry {
  return {
    index: entry.index,
    term: entry.term,
    leaderNoop: entry.kind === "leader-noop",
    configChange: entry.kind === "config",
    data: Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength),
  };
}

function entryFromWire(wire: RaftEntry): Entry {
  const kind = wire.configChange ? "config" : wire.leaderNoop ? "leader-noop" : "normal";
  return { index: wire.index, term: wire.term, kind, data: wire.data };
}
