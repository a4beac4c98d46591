// Test-only: a hand-driven cluster for the core's unit tests (excluded from the build).
import { DEFAULT_RAFT_CONFIG } from "./config";
import type { RaftConfig } from "./config";
import { RaftNode } from "./raft-node";
import type { Ready } from "./raft-node";
import { MemoryStorage } from "./storage";
import { EMPTY_HARD_STATE } from "./types";
import type { Entry, HardState, Message, NodeId } from "./types";

export interface HarnessNode {
  readonly id: NodeId;
  raft: RaftNode;
  storage: MemoryStorage;
  /** When false, writes stay unacknowledged until persistNow(id). */
  autoPersist: boolean;
  readonly applied: Entry[];
  readonly readies: Ready[];
  /** The membership it was created with (RaftConfig.voters, .learners): what a restart starts from. */
  readonly initialVoters: readonly NodeId[];
  readonly initialLearners: readonly NodeId[];
}

export interface NodeSetup {
  readonly hardState?: HardState;
  readonly entries?: readonly Entry[];
}

/** Entries (index from 1) with the given terms. */
export function entriesWithTerms(terms: readonly number[], firstIndex = 1): Entry[] {
  return terms.map((term, offset) => ({
    index: BigInt(firstIndex + offset),
    term: BigInt(term),
    kind: "normal" as const,
    data: new Uint8Array([firstIndex + offset, term]),
  }));
}

/**
 * Nodes 1..n with in-memory storage and a message queue the test controls:
 * nothing is delivered until the test says so, and `isolated` nodes lose
 * everything they send or receive.
 */
export class Harness {
  readonly nodes = new Map<NodeId, HarnessNode>();
  queue: Message[] = [];
  readonly isolated = new Set<NodeId>();
  readonly delivered: Message[] = [];

  constructor(
    count: number,
    private readonly overrides: Partial<Omit<RaftConfig, "id" | "voters">> = {},
    setups: Readonly<Record<number, NodeSetup>> = {},
  ) {
    const voters = Array.from({ length: count }, (_, index) => index + 1);
    for (const id of voters) {
      const setup = setups[id] ?? {};
      const storage = new MemoryStorage(setup.hardState ?? EMPTY_HARD_STATE, setup.entries ?? []);
      const raft = new RaftNode(this.config(id, voters), storage);
      this.nodes.set(id, { id, raft, storage, autoPersist: true, applied: [], readies: [], initialVoters: voters, initialLearners: [] });
    }
  }

  /** A new, empty node `id` that starts as a learner (RaftConfig.learners = [id]) among `voters` (a joining replica). */
  addLearnerNode(id: NodeId, voters: readonly NodeId[]): HarnessNode {
    if (this.nodes.has(id)) throw new Error(`node ${id} exists`);
    const storage = new MemoryStorage();
    const raft = new RaftNode({ ...this.config(id, voters), learners: [id] }, storage);
    const node: HarnessNode = {
      id,
      raft,
      storage,
      autoPersist: true,
      applied: [],
      readies: [],
      initialVoters: voters,
      initialLearners: [id],
    };
    this.nodes.set(id, node);
    return node;
  }

  node(id: NodeId): HarnessNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  raft(id: NodeId): RaftNode {
    return this.node(id).raft;
  }

  /** Processes every Ready of `id`: write, queue messages, apply, advance. */
  process(id: NodeId): void {
    const node = this.node(id);
    while (node.raft.hasReady()) {
      const ready = node.raft.ready();
      node.readies.push(ready);
      if (ready.hardState !== undefined) node.storage.setHardState(ready.hardState);
      if (ready.snapshot !== undefined) node.storage.installSnapshot(ready.snapshot);
      if (ready.truncateAfter !== undefined) node.storage.truncateAfter(ready.truncateAfter);
      node.storage.append(ready.entries);
      for (const message of ready.messages) this.queue.push(message);
      node.applied.push(...ready.committedEntries);
      node.raft.advance(ready);
      if (node.autoPersist) this.persistNow(id);
    }
  }

  /** Reports everything written so far as durable. */
  persistNow(id: NodeId): void {
    const node = this.node(id);
    const last = node.storage.lastIndex();
    const term = node.storage.term(last);
    if (last > 0n && term !== undefined) {
      node.raft.persisted(last, term);
      this.process(id);
    }
  }

  tick(id: NodeId, times = 1): void {
    for (let tick = 0; tick < times; tick++) {
      this.raft(id).tick();
      this.process(id);
    }
  }

  propose(id: NodeId, data: Uint8Array = new Uint8Array([7])): ReturnType<RaftNode["propose"]> {
    const result = this.raft(id).propose(data);
    this.process(id);
    return result;
  }

  /** Delivers the oldest queued message that `accept` allows; returns it, or undefined if none. */
  deliverOne(accept: (message: Message) => boolean = () => true): Message | undefined {
    const position = this.queue.findIndex((message) => accept(message));
    if (position < 0) return undefined;
    const [message] = this.queue.splice(position, 1);
    if (message === undefined) return undefined;
    // Isolated nodes lose their messages, and so do nodes that do not exist (a member not started yet).
    if (this.isolated.has(message.from) || this.isolated.has(message.to) || !this.nodes.has(message.to)) return message;
    this.delivered.push(message);
    this.raft(message.to).step(message);
    this.process(message.to);
    return message;
  }

  /** Delivers until the queue is empty (bounded, so a livelock fails the test). */
  stabilize(accept: (message: Message) => boolean = () => true, messagesMax = 10_000): void {
    for (let count = 0; count < messagesMax; count++) {
      if (this.deliverOne(accept) === undefined) return;
    }
    throw new Error(`not stable after ${messagesMax} messages`);
  }

  /** Makes `id` campaign (its timeout elapses first) and delivers until quiet. */
  elect(id: NodeId): void {
    this.tick(id, this.overrides.electionTicks ?? DEFAULT_RAFT_CONFIG.electionTicks);
    this.stabilize();
  }

  /** Crash and restart from what storage holds (all of it, as autoPersist made it durable). */
  restart(id: NodeId, appliedIndex = 0n): void {
    const node = this.node(id);
    node.storage = new MemoryStorage(node.storage.hardState(), node.storage.allEntries(), node.storage.snapshot());
    node.raft = new RaftNode({ ...this.config(id, node.initialVoters), learners: node.initialLearners, appliedIndex }, node.storage);
    node.applied.length = 0;
  }

  /** Restarts `id` as if its disk were lost, from `hardState` and an empty log. */
  wipe(id: NodeId, hardState: HardState): void {
    const node = this.node(id);
    node.storage = new MemoryStorage(hardState, []);
    node.raft = new RaftNode({ ...this.config(id, node.initialVoters), learners: node.initialLearners }, node.storage);
    node.applied.length = 0;
  }

  private config(id: NodeId, voters: readonly NodeId[]): RaftConfig {
    // randomInt = 0: every timeout is exactly electionTicks, so tests choose who campaigns.
    return { ...DEFAULT_RAFT_CONFIG, id, voters, randomInt: () => 0, ...this.overrides };
  }
}
