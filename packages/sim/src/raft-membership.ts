import { assert } from "@logplayer/common";
import { DEFAULT_RAFT_CONFIG, MemoryStorage, RaftNode, checkIncomingMessage, decodeConfigChange } from "@logplayer/raft";
import type { ConfigChange, Entry, Message, NodeId } from "@logplayer/raft";
import { SimNetwork } from "./network";
import { describeNetworkFaults, pickNetworkFaults } from "./network";
import { InvariantViolation } from "./raft-checker";
import { Simulator, DEFAULT_SIMULATOR_CONFIG } from "./simulator";

/**
 * Membership changes under faults (run-raft --membership): learners are added,
 * caught up and promoted, voters and learners removed (the leader too), while
 * nodes crash and restart, the network partitions, drops and delays.
 *
 * Unlike the default Raft scenario it drives the core directly over
 * MemoryStorage (the adapter's part done here: write, send, apply, advance,
 * report durability a little later, lose the undurable tail on a crash), and
 * every delivered message goes through checkIncomingMessage with the
 * receiver's membership, as the LogStore's driver does. Checked after every
 * event:
 * - at most one leader per term, across memberships;
 * - log matching: an (index, term) always holds the same entry after the same
 *   previous term, on every node;
 * - committed entries are never lost or changed: each node's committed prefix
 *   agrees with every other's, and a new leader holds every committed entry;
 * - each commit a leader makes is backed by the durable logs of a majority of
 *   the voters of its membership: a learner's or a removed node's
 *   acknowledgement never counts;
 * - only a voter campaigns (or a node whose own removal is not committed yet),
 *   and a leader does not outlive its committed removal.
 * After healing: one leader, and every member holds and applies its whole log.
 */

export interface MembershipScenarioOptions {
  readonly seed: number;
  readonly steps: number;
  /** Voters at the start (ids 1..n); learners and new voters get fresh ids above them. */
  readonly nodes: number;
}

export interface MembershipScenarioResult {
  readonly ok: boolean;
  readonly seed: number;
  readonly violation: string | undefined;
  readonly replayCommand: string;
  readonly traceTail: readonly string[];
  readonly stats: {
    readonly steps: number;
    readonly crashes: number;
    readonly termMax: bigint;
    readonly committed: bigint;
    readonly changes: Readonly<Record<ConfigChange["type"], number>>;
    readonly refusedChanges: number;
    readonly refusedMessages: number;
    readonly votersFinal: readonly NodeId[];
    readonly learnersFinal: readonly NodeId[];
  };
}

const TICK_MS = 10;
/** Node ids a run may use: each added node gets a fresh one (see docs/membership.md on reusing an id). */
const NODE_IDS_MAX = 14;
const MEMBERS_MAX = 6;
const QUIESCE_STEPS_MAX = 60_000;

interface SimNode {
  readonly id: NodeId;
  readonly initialVoters: readonly NodeId[];
  readonly initialLearners: readonly NodeId[];
  storage: MemoryStorage;
  raft: RaftNode | undefined;
  incarnation: number;
  /** Highest index made durable; a crash drops what storage holds above it. */
  durableIndex: bigint;
  /** Committed prefix already checked against `committed` (this incarnation). */
  checkedCommit: bigint;
  lastRole: string;
}

export class MembershipCluster {
  readonly sim: Simulator;
  private readonly network: SimNetwork<Message>;
  private readonly nodes = new Map<NodeId, SimNode>();
  private faultsOn = true;
  private nextId: NodeId;
  private nextData = 1;
  private crashes = 0;
  private refusedChanges = 0;
  private refusedMessages = 0;
  private readonly changes: Record<ConfigChange["type"], number> = { "add-learner": 0, promote: 0, remove: 0 };
  /** Term -> its leader. */
  private readonly leaders = new Map<bigint, NodeId>();
  /** Index -> the committed entry's term and data, as first seen committed anywhere. */
  private readonly committed = new Map<bigint, { term: bigint; key: string }>();
  private committedMax = 0n;
  /** "index/term" -> the entry's data and the term before it, as first written anywhere. */
  private readonly written = new Map<string, { key: string; prevTerm: bigint | undefined }>();
  private readonly tuning: { preVote: boolean; checkQuorum: boolean; fsyncMsMax: number; changeGapMsMax: number };

  constructor(private readonly options: MembershipScenarioOptions) {
    assert(options.nodes >= 1 && options.nodes <= 5, `sim: --membership runs 1..5 initial voters, got ${options.nodes}`);
    this.sim = new Simulator({ ...DEFAULT_SIMULATOR_CONFIG, seed: options.seed });
    const prng = this.sim.prng;
    this.tuning = {
      preVote: prng.chance(0.75),
      checkQuorum: prng.chance(0.75),
      fsyncMsMax: prng.pick([0, 5, 20]),
      changeGapMsMax: prng.pick([50, 200, 600]),
    };
    this.network = new SimNetwork<Message>(this.sim, { messagesInFlightMax: 10_000 }, (to, message) => this.deliver(to, message));
    const voters = Array.from({ length: options.nodes }, (_, index) => index + 1);
    this.nextId = options.nodes + 1;
    for (const id of voters) this.addNode(id, voters, []);
  }

  run(): MembershipScenarioResult {
    let violation: string | undefined;
    try {
      for (const node of this.nodes.values()) this.boot(node);
      this.scheduleClient();
      this.scheduleNemesis();
      this.scheduleChange();
      for (let step = 0; step < this.options.steps; step++) {
        if (!this.sim.step()) break;
        this.checkStep();
      }
      this.healAll();
      this.runUntilQuiescent();
    } catch (error: unknown) {
      if (error instanceof InvariantViolation) violation = error.message;
      else violation = `exception: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
    }
    return this.result(violation);
  }

  // ---- nodes ---------------------------------------------------------------------

  private addNode(id: NodeId, voters: readonly NodeId[], learners: readonly NodeId[]): SimNode {
    const node: SimNode = {
      id,
      initialVoters: voters,
      initialLearners: learners,
      storage: new MemoryStorage(),
      raft: undefined,
      incarnation: 0,
      durableIndex: 0n,
      checkedCommit: 0n,
      lastRole: "",
    };
    this.nodes.set(id, node);
    return node;
  }

  /** Starts (or restarts) a node from what its storage holds: the core recomputes the membership from the log. */
  private boot(node: SimNode): void {
    node.incarnation++;
    node.storage = new MemoryStorage(node.storage.hardState(), node.storage.allEntries(), node.storage.snapshot());
    node.raft = new RaftNode(
      {
        ...DEFAULT_RAFT_CONFIG,
        id: node.id,
        voters: node.initialVoters,
        learners: node.initialLearners,
        electionTicks: 10,
        heartbeatTicks: 2,
        preVote: this.tuning.preVote,
        checkQuorum: this.tuning.checkQuorum,
        entriesPerMessageMax: 8,
        inflightMessagesMax: 4,
        uncommittedEntriesMax: 256,
        appliedIndex: node.storage.hardState().commit,
        randomInt: (bound) => this.sim.prng.int(bound),
      },
      node.storage,
    );
    node.checkedCommit = 0n;
    node.lastRole = "";
    this.sim.trace(`n${node.id} boots (last ${node.storage.lastIndex()}, ${describeMembership(node.raft)})`);
    const incarnation = node.incarnation;
    const tick = (): void => {
      this.sim.schedule(TICK_MS + this.sim.prng.between(-2, 2), () => {
        if (node.incarnation !== incarnation || node.raft === undefined) return;
        node.raft.tick();
        this.process(node);
        tick();
      });
    };
    tick();
  }

  private crash(node: SimNode): void {
    if (node.raft === undefined) return;
    node.raft = undefined;
    node.incarnation++;
    node.storage.truncateAfter(node.durableIndex);
    this.crashes++;
    this.sim.trace(`n${node.id} CRASHES (keeps ${node.durableIndex})`);
  }

  /** The adapter's loop: write, send, apply, advance; the write becomes durable a simulated fsync later. */
  private process(node: SimNode): void {
    const raft = node.raft;
    if (raft === undefined) return;
    const commitBefore = raft.status().commit;
    for (let round = 0; round < 100 && raft.hasReady(); round++) {
      const ready = raft.ready();
      if (ready.hardState !== undefined) node.storage.setHardState(ready.hardState);
      assert(ready.snapshot === undefined, "sim: no snapshots in the membership scenario");
      if (ready.truncateAfter !== undefined) {
        node.storage.truncateAfter(ready.truncateAfter);
        if (node.durableIndex > ready.truncateAfter) node.durableIndex = ready.truncateAfter;
      }
      for (const entry of ready.entries) this.onWrite(node, entry);
      node.storage.append(ready.entries);
      for (const message of ready.messages) this.network.send(node.id, message.to, message);
      if (ready.membership !== undefined) this.sim.trace(`n${node.id} membership ${describeMembership(raft)}`);
      raft.advance(ready);
      if (ready.entries.length > 0) this.schedulePersist(node);
    }
    assert(!raft.hasReady(), "sim: a Ready loop that does not end");
    if (raft.status().role === "leader" && raft.status().commit > commitBefore) this.checkCommitBacked(node, raft.status().commit);
  }

  private schedulePersist(node: SimNode): void {
    const incarnation = node.incarnation;
    const last = node.storage.lastIndex();
    const term = node.storage.term(last);
    this.sim.schedule(this.sim.prng.between(0, this.tuning.fsyncMsMax), () => {
      if (node.incarnation !== incarnation || node.raft === undefined || term === undefined) return;
      // Overwritten since (a truncation): that write's fsync covers only what is still there.
      if (node.storage.term(last) !== term) return;
      if (last > node.durableIndex) node.durableIndex = last;
      node.raft.persisted(last, term);
      this.process(node);
    });
  }

  private deliver(to: NodeId, message: Message): void {
    const node = this.nodes.get(to);
    const raft = node?.raft;
    if (node === undefined || raft === undefined) return;
    const status = raft.status();
    const problem = checkIncomingMessage(message, {
      id: to,
      voters: status.voters,
      learners: status.learners,
      lastIndex: status.lastIndex,
      rejoining: status.rejoining,
      // Every replica the admin started is an authenticated peer of this cluster.
      peers: [...this.nodes.keys()],
    });
    if (problem !== null) {
      this.refusedMessages++;
      return;
    }
    raft.step(message);
    this.process(node);
  }

  // ---- client, nemesis, changes --------------------------------------------------

  private leader(): SimNode | undefined {
    let found: SimNode | undefined;
    for (const node of this.nodes.values()) {
      const status = node.raft?.status();
      if (status?.role === "leader" && (found === undefined || status.term > (found.raft?.status().term ?? 0n))) found = node;
    }
    return found;
  }

  private scheduleClient(): void {
    this.sim.schedule(this.sim.prng.between(5, 40), () => {
      if (!this.faultsOn) return;
      const leader = this.leader();
      if (leader?.raft !== undefined) {
        leader.raft.propose(new TextEncoder().encode(`d${this.nextData++}`));
        this.process(leader);
      }
      this.scheduleClient();
    });
  }

  private scheduleNemesis(): void {
    this.sim.schedule(this.sim.prng.between(10, 300), () => {
      if (!this.faultsOn) return;
      this.nemesisAction();
      this.scheduleNemesis();
    });
  }

  private nemesisAction(): void {
    const prng = this.sim.prng;
    const all = [...this.nodes.values()];
    const leader = this.leader();
    const choice = prng.int(10);
    if (choice < 3) {
      const node = choice === 0 && leader !== undefined ? leader : prng.pick(all);
      this.crash(node);
      this.sim.schedule(prng.between(20, 1_000), () => {
        if (node.raft === undefined && this.faultsOn) this.boot(node);
      });
    } else if (choice < 5) {
      const groups: NodeId[][] = [[], []];
      for (const node of all) groups[prng.int(2)]?.push(node.id);
      this.network.partition(groups);
      this.sim.trace(`nemesis: partition [${groups[0]?.join(",")}] | [${groups[1]?.join(",")}]`);
    } else if (choice < 6 && leader !== undefined) {
      this.network.partition([[leader.id], all.filter((node) => node !== leader).map((node) => node.id)]);
      this.sim.trace(`nemesis: isolate leader n${leader.id}`);
    } else if (choice < 8) {
      this.network.heal();
      this.sim.trace("nemesis: heal partition");
    } else {
      const faults = pickNetworkFaults(prng, {
        dropProbabilities: [0, 0.05, 0.2],
        duplicateProbabilities: [0, 0.05],
        delayMsMaxima: [5, 30],
      });
      this.network.faults = faults;
      this.sim.trace(describeNetworkFaults(faults));
    }
  }

  private scheduleChange(): void {
    this.sim.schedule(this.sim.prng.between(20, this.tuning.changeGapMsMax), () => {
      if (!this.faultsOn) return;
      this.proposeChange();
      this.scheduleChange();
    });
  }

  /** Grows with fresh learners (started empty, as a joining replica), promotes them, removes members: the admin's moves. */
  private proposeChange(): void {
    const prng = this.sim.prng;
    const leader = this.leader();
    const raft = leader?.raft;
    if (leader === undefined || raft === undefined) return;
    const { voters, learners } = raft.membership();
    const members = [...voters, ...learners];
    let change: ConfigChange;
    const roll = prng.int(10);
    if (learners.length > 0 && roll < 4) {
      change = { type: "promote", node: prng.pick(learners), context: new Uint8Array(0) };
    } else if (members.length < MEMBERS_MAX && this.nextId <= NODE_IDS_MAX && roll < 7) {
      change = { type: "add-learner", node: this.nextId, context: new Uint8Array([1, 2, 3]) };
    } else if (members.length > 1) {
      // The leader itself sometimes: it must step down once its removal commits.
      change = { type: "remove", node: prng.chance(0.2) ? leader.id : prng.pick(members), context: new Uint8Array(0) };
    } else {
      return;
    }
    const result = raft.proposeConfigChange(change);
    this.process(leader);
    if (!result.ok) {
      this.refusedChanges++;
      this.sim.trace(`admin: n${leader.id} refused ${change.type} n${change.node}: ${result.reason}`);
      return;
    }
    this.changes[change.type]++;
    this.sim.trace(`admin: n${leader.id} appended ${change.type} n${change.node} at ${result.index} t${result.term}`);
    if (change.type === "add-learner") {
      // The new replica starts empty, knowing the current voters, as itself a learner.
      const node = this.addNode(this.nextId++, voters, [change.node]);
      this.boot(node);
    }
  }

  private healAll(): void {
    this.faultsOn = false;
    this.network.heal();
    this.network.faults = { dropProbability: 0, duplicateProbability: 0, delayMsMin: 1, delayMsMax: 5 };
    for (const node of this.nodes.values()) if (node.raft === undefined) this.boot(node);
    this.sim.trace("heal: network reliable, every node running");
  }

  private runUntilQuiescent(): void {
    for (let step = 0; step < QUIESCE_STEPS_MAX; step++) {
      if (!this.sim.step()) break;
      this.checkStep();
      if (step % 50 === 0 && this.quiescent()) return;
    }
    const leader = this.leader();
    throw new InvariantViolation(
      `liveness: no quiescence within ${QUIESCE_STEPS_MAX} steps after healing (leader ${leader === undefined ? "none" : `n${leader.id}`})`,
    );
  }

  /** One leader whose whole log is committed, and every member of its membership holding and applying all of it. */
  private quiescent(): boolean {
    const leaders = [...this.nodes.values()].filter((node) => node.raft?.status().role === "leader");
    const leader = leaders[0]?.raft;
    if (leaders.length !== 1 || leader === undefined) return false;
    const status = leader.status();
    if (status.commit !== status.lastIndex) return false;
    const { voters, learners } = leader.membership();
    return [...voters, ...learners].every((id) => {
      const member = this.nodes.get(id)?.raft?.status();
      return member !== undefined && member.applied === status.commit && member.lastIndex === status.lastIndex;
    });
  }

  // ---- checks ------------------------------------------------------------------

  private onWrite(node: SimNode, entry: Entry): void {
    const prevTerm = entry.index === 1n ? 0n : (node.storage.term(entry.index - 1n) ?? undefined);
    const key = `${entry.index}/${entry.term}`;
    const data = entryKey(entry);
    const seen = this.written.get(key);
    if (seen === undefined) {
      this.written.set(key, { key: data, prevTerm });
      return;
    }
    if (seen.key !== data) throw new InvariantViolation(`log matching: n${node.id} wrote ${key} = ${data}, elsewhere ${seen.key}`);
    if (prevTerm !== undefined && seen.prevTerm !== undefined && prevTerm !== seen.prevTerm) {
      throw new InvariantViolation(`log matching: n${node.id} holds ${key} after term ${prevTerm}, elsewhere after ${seen.prevTerm}`);
    }
  }

  private checkStep(): void {
    for (const node of this.nodes.values()) {
      const raft = node.raft;
      if (raft === undefined) continue;
      const status = raft.status();
      const role = `${status.role} t${status.term}`;
      const isVoter = status.voters.includes(node.id);
      if (role !== node.lastRole) {
        node.lastRole = role;
        this.sim.trace(`n${node.id} is ${role} (last ${status.lastIndex}, commit ${status.commit}, ${describeMembership(raft)})`);
        // A voter campaigns, or a node whose own removal is not committed yet (RaftNode.mayCampaign); no one else.
        const committedVoter = raft.membershipAt(status.commit)?.voters.includes(node.id) === true;
        if ((status.role === "candidate" || status.role === "pre-candidate") && !isVoter && !committedVoter) {
          throw new InvariantViolation(`campaign: n${node.id} is ${status.role} but not a voter in ${describeMembership(raft)}`);
        }
        if (status.role === "leader") this.onNewLeader(node, status.term);
      }
      if (status.role === "leader" && !isVoter) {
        const committedMembership = raft.membershipAt(status.commit);
        if (committedMembership !== undefined && !committedMembership.voters.includes(node.id)) {
          throw new InvariantViolation(`removal: n${node.id} still leads t${status.term} after its removal committed`);
        }
      }
      this.checkCommitted(node, status.commit);
    }
  }

  private onNewLeader(node: SimNode, term: bigint): void {
    const other = this.leaders.get(term);
    if (other !== undefined && other !== node.id)
      throw new InvariantViolation(`election safety: n${other} and n${node.id} both lead t${term}`);
    this.leaders.set(term, node.id);
    // Leader completeness: it holds every entry committed so far.
    for (let index = 1n; index <= this.committedMax; index++) {
      const entry = this.committed.get(index);
      if (entry !== undefined && node.storage.term(index) !== entry.term) {
        throw new InvariantViolation(`leader completeness: n${node.id} leads t${term} without committed ${index}/${entry.term}`);
      }
    }
  }

  /** A node's newly committed entries agree with what was committed anywhere before. */
  private checkCommitted(node: SimNode, commit: bigint): void {
    if (commit <= node.checkedCommit) return;
    const upTo = commit < node.storage.lastIndex() ? commit : node.storage.lastIndex();
    for (let index = node.checkedCommit + 1n; index <= upTo; index++) {
      const [entry] = node.storage.entries(index, index + 1n, Number.MAX_SAFE_INTEGER);
      assert(entry !== undefined, `sim: n${node.id} has no entry ${index}`);
      const key = entryKey(entry);
      const known = this.committed.get(index);
      if (known === undefined) {
        this.committed.set(index, { term: entry.term, key });
        if (index > this.committedMax) this.committedMax = index;
      } else if (known.term !== entry.term || known.key !== key) {
        throw new InvariantViolation(
          `committed entry changed: n${node.id} committed ${index}/${entry.term} (${key}), before ${known.term} (${known.key})`,
        );
      }
    }
    node.checkedCommit = upTo;
  }

  /** The leader committed through `commit`: a majority of ITS voters must hold that entry durably. */
  private checkCommitBacked(leader: SimNode, commit: bigint): void {
    const raft = leader.raft;
    assert(raft !== undefined, "sim: checking a stopped leader");
    const term = leader.storage.term(commit);
    const { voters } = raft.membership();
    const holders = voters.filter((id) => {
      const node = this.nodes.get(id);
      return node !== undefined && node.durableIndex >= commit && node.storage.term(commit) === term;
    });
    if (holders.length < Math.floor(voters.length / 2) + 1) {
      throw new InvariantViolation(
        `quorum: n${leader.id} committed ${commit}/t${term} held durably by only [${holders.join(",")}] of voters [${voters.join(",")}]`,
      );
    }
  }

  private result(violation: string | undefined): MembershipScenarioResult {
    const { seed, steps, nodes } = this.options;
    let termMax = 0n;
    for (const node of this.nodes.values()) {
      const term = node.raft?.status().term ?? node.storage.hardState().term;
      if (term > termMax) termMax = term;
    }
    const final = this.leader()?.raft?.membership() ?? { voters: [], learners: [] };
    return {
      ok: violation === undefined,
      seed,
      violation,
      replayCommand: `node packages/sim/dist/run-raft.js --membership --seed ${seed} --steps ${steps} --nodes ${nodes}`,
      traceTail: this.sim.traceTail(),
      stats: {
        steps: this.sim.stepCount,
        crashes: this.crashes,
        termMax,
        committed: this.committedMax,
        changes: { ...this.changes },
        refusedChanges: this.refusedChanges,
        refusedMessages: this.refusedMessages,
        votersFinal: final.voters,
        learnersFinal: final.learners,
      },
    };
  }
}

export function runMembershipScenario(options: MembershipScenarioOptions): MembershipScenarioResult {
  return new MembershipCluster(options).run();
}

function entryKey(entry: Entry): string {
  if (entry.kind === "leader-noop") return "noop";
  if (entry.kind === "config") {
    const change = decodeConfigChange(entry.data);
    return typeof change === "string" ? `config?${change}` : `${change.type}:${change.node}`;
  }
  return new TextDecoder().decode(entry.data);
}

function describeMembership(raft: RaftNode): string {
  const { voters, learners } = raft.membership();
  return `voters [${voters.join(",")}]${learners.length > 0 ? ` learners [${learners.join(",")}]` : ""}`;
}
