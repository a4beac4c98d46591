/**
 * Golden interaction tests for the Raft core, after etcd's raft `testdata/*.txt`
 * (driven there by cockroachdb/datadriven; this is our own small runner).
 *
 * Each file in ../testdata is a script of commands; after each command, a line
 * `----` and the output the command must print, up to the next blank line:
 *
 *   # a comment
 *   campaign 1
 *   ----
 *   1 became leader at term 1
 *
 * The commands are described in ../testdata/README.md. To regenerate every
 * expected block from what the code prints now:
 *
 *   REWRITE=1 npx jest packages/raft/src/interaction.test.ts     (or: pnpm -s rewrite:raft)
 *
 * Only commit rewritten output you understand: a changed block is a changed
 * behaviour of the core, and the diff is the review.
 */
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_RAFT_CONFIG, MemoryStorage, RaftNode, decodeConfigChange } from "./index";
import type { Entry, Membership, Message, NodeId, RaftConfig, RaftStatus, Ready, SnapshotMeta } from "./index";

const TESTDATA_DIR = join(__dirname, "..", "testdata");
const REWRITE = process.env["REWRITE"] === "1";
/** Rounds of "process every Ready, deliver every message" before stabilize gives up (a livelock fails the script). */
const STABILIZE_ROUNDS_MAX = 1_000;

// ---- script files -------------------------------------------------------------

/** A line kept as written (comment or blank), or one command with its expected output. */
type ScriptPart =
  | { readonly kind: "literal"; readonly text: string }
  | { readonly kind: "command"; readonly line: number; readonly text: string; readonly expected: readonly string[] };

function parseScript(path: string, text: string): ScriptPart[] {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const parts: ScriptPart[] = [];
  let position = 0;
  while (position < lines.length) {
    const line = lines[position] ?? "";
    if (line.trim() === "" || line.startsWith("#")) {
      parts.push({ kind: "literal", text: line });
      position++;
      continue;
    }
    if (lines[position + 1] !== "----") throw new Error(`${path}:${position + 1}: "${line}" must be followed by a line "----"`);
    const expected: string[] = [];
    let next = position + 2;
    while (next < lines.length && (lines[next] ?? "").trim() !== "") {
      expected.push(lines[next] ?? "");
      next++;
    }
    parts.push({ kind: "command", line: position + 1, text: line, expected });
    position = next;
  }
  return parts;
}

function renderScript(parts: readonly ScriptPart[], outputs: ReadonlyMap<ScriptPart, readonly string[]>): string {
  const lines: string[] = [];
  for (const part of parts) {
    if (part.kind === "literal") lines.push(part.text);
    else lines.push(part.text, "----", ...(outputs.get(part) ?? []));
  }
  return `${lines.join("\n")}\n`;
}

/** `name 1 2 key=value` -> name, positional ["1", "2"], options {key: "value"}. */
interface Command {
  readonly name: string;
  readonly args: readonly string[];
  readonly options: ReadonlyMap<string, string>;
}

function parseCommand(text: string): Command {
  const [name = "", ...words] = text.trim().split(/\s+/);
  const args: string[] = [];
  const options = new Map<string, string>();
  for (const word of words) {
    const equals = word.indexOf("=");
    if (equals > 0) options.set(word.slice(0, equals), word.slice(equals + 1));
    else args.push(word);
  }
  return { name, args, options };
}

// ---- printing -----------------------------------------------------------------

/** Entries print as term/index, as in etcd's testdata. */
function formatEntry(entry: Entry): string {
  if (entry.kind === "leader-noop") return `${entry.term}/${entry.index} noop`;
  if (entry.kind === "config") {
    const change = decodeConfigChange(entry.data);
    return `${entry.term}/${entry.index} config ${typeof change === "string" ? `MALFORMED (${change})` : `${change.type} ${change.node}`}`;
  }
  return `${entry.term}/${entry.index} ${formatData(entry.data)}`;
}

function formatData(data: Uint8Array): string {
  const printable = data.every((byte) => byte >= 0x20 && byte < 0x7f && byte !== 0x22);
  if (printable) return `"${Buffer.from(data).toString("latin1")}"`;
  return `0x${Buffer.from(data).toString("hex")}`;
}

function formatMessage(message: Message): string {
  const head = `${message.from}->${message.to} ${message.type} term=${message.term}`;
  switch (message.type) {
    case "append":
      return (
        `${head} prev=${message.prevTerm}/${message.prevIndex} commit=${message.commit}` +
        ` entries=[${message.entries.map(formatEntry).join(", ")}]`
      );
    case "append-response":
      return message.reject
        ? `${head} REJECT index=${message.index} hint=${message.hintTerm}/${message.hintIndex}`
        : `${head} index=${message.index}`;
    case "heartbeat":
      return `${head} commit=${message.commit}`;
    case "snapshot":
      return `${head} snapshot=${formatSnapshot(message.snapshot)}`;
    case "heartbeat-response":
      return head;
    case "vote":
    case "pre-vote":
      return `${head} last=${message.lastTerm}/${message.lastIndex}`;
    case "vote-response":
    case "pre-vote-response":
      return `${head} ${message.reject ? "REJECT" : "granted"}`;
  }
}

function formatSnapshot(snapshot: SnapshotMeta): string {
  return `${snapshot.term}/${snapshot.index} ${formatMembership(snapshot)}`;
}

/** Learners print only when there are some, so scripts without membership changes read as before. */
function formatMembership(membership: Membership): string {
  const learners = membership.learners.length > 0 ? ` learners=[${membership.learners.join(",")}]` : "";
  return `voters=[${membership.voters.join(",")}]${learners}`;
}

function formatStatus(status: RaftStatus): string {
  return (
    `${status.id} ${status.role} term=${status.term} vote=${status.vote} leader=${status.leader}` +
    ` commit=${status.commit} durable-commit=${status.durableCommit} last=${status.lastIndex}` +
    ` persisted=${status.persistedIndex} applied=${status.applied}`
  );
}

/** What changed in role, term or leader between two statuses, as lines (none if nothing did). */
function describeChange(before: RaftStatus, after: RaftStatus): string[] {
  if (before.role !== after.role || before.term !== after.term) {
    const leader = after.role === "follower" && after.leader !== 0 ? ` (leader ${after.leader})` : "";
    return [`${after.id} became ${after.role} at term ${after.term}${leader}`];
  }
  if (before.leader !== after.leader) {
    return [after.leader === 0 ? `${after.id} lost its leader` : `${after.id} follows leader ${after.leader}`];
  }
  return [];
}

// ---- the cluster under test ---------------------------------------------------

interface EnvNode {
  readonly id: NodeId;
  raft: RaftNode;
  storage: MemoryStorage;
  /** When false, written entries stay unacknowledged until `persist`. */
  autoPersist: boolean;
  /** Highest index reported durable; a crash loses what storage holds above it. */
  durableIndex: bigint;
  crashed: boolean;
  /** RaftConfig.voters and .learners it was created with: a restart starts from them (and its storage). */
  readonly initialVoters: readonly NodeId[];
  readonly initialLearners: readonly NodeId[];
}

/**
 * Nodes 1..n on one network the script drives by hand: nothing happens
 * unless a command says so, and a message is delivered only by deliver-msgs
 * or stabilize (dropped then if sender and receiver are in different
 * partitions or the receiver is down).
 */
class InteractionEnv {
  private readonly nodes = new Map<NodeId, EnvNode>();
  private network: Message[] = [];
  /** Node id -> partition group; undefined when the network is whole. */
  private groups: Map<NodeId, number> | undefined = undefined;
  private overrides: Partial<RaftConfig> = {};
  /** Node id -> extra election timeout ticks (the node's "random" draw); 0 unless election-jitter says so. */
  private readonly jitter = new Map<NodeId, number>();
  private readonly out: string[] = [];

  run(command: Command): string[] {
    this.out.length = 0;
    try {
      this.dispatch(command);
    } catch (error) {
      if (error instanceof ScriptError) throw error;
      // The core refused (an assertion): that is output worth seeing in the script.
      this.out.push(`error: ${error instanceof Error ? error.message : String(error)}`);
    }
    return this.out.length === 0 ? ["ok"] : [...this.out];
  }

  private dispatch(command: Command): void {
    const ids = (): NodeId[] => (command.args.length === 0 ? [...this.nodes.keys()] : command.args.map(parseId));
    const id = (): NodeId => parseId(argAt(command, 0));
    const handlers: Readonly<Record<string, () => void>> = {
      "add-nodes": () => this.addNodes(command),
      campaign: () => this.campaign(id()),
      "tick-election": () => this.tick(id(), this.config(1).electionTicks),
      "tick-heartbeat": () => this.tick(id(), this.config(1).heartbeatTicks),
      tick: () => this.tick(id(), Number(command.args[1] ?? "1")),
      propose: () => this.propose(id(), argAt(command, 1)),
      "process-ready": () => {
        for (const each of ids()) this.processReady(each);
      },
      "deliver-msgs": () => {
        for (const each of ids()) this.deliver(each);
      },
      stabilize: () => this.stabilize(ids()),
      "election-jitter": () => {
        this.jitter.set(id(), Number(argAt(command, 1)));
      },
      persist: () => this.persist(id()),
      "persist-mode": () => this.persistMode(id(), argAt(command, 1)),
      partition: () => this.partition(command.args),
      heal: () => {
        this.groups = undefined;
      },
      crash: () => this.crash(id()),
      restart: () => this.restart(id()),
      status: () => {
        for (const each of ids()) this.out.push(formatStatus(this.node(each).raft.status()));
      },
      log: () => {
        for (const each of ids()) this.printLog(each);
      },
      compact: () => this.compact(id(), BigInt(argAt(command, 1))),
      "report-snapshot": () => this.reportSnapshot(id(), parseId(argAt(command, 1)), argAt(command, 2)),
      "add-learner-node": () => this.addLearnerNode(id()),
      "propose-change": () => this.proposeChange(id(), argAt(command, 1), parseId(argAt(command, 2))),
      membership: () => {
        for (const each of ids()) this.out.push(`${each} ${formatMembership(this.node(each).raft.membership())}`);
      },
    };
    const handler = Object.hasOwn(handlers, command.name) ? handlers[command.name] : undefined;
    if (handler === undefined) throw new ScriptError(`unknown command "${command.name}"`);
    handler();
  }

  /** add-nodes N [pre-vote=bool] [check-quorum=bool] [election-ticks=N] [heartbeat-ticks=N] */
  private addNodes(command: Command): void {
    if (this.nodes.size > 0) throw new ScriptError("add-nodes: the cluster already exists");
    const count = Number(argAt(command, 0));
    for (const [key, value] of command.options) {
      if (key === "pre-vote") this.overrides = { ...this.overrides, preVote: parseBool(value) };
      else if (key === "check-quorum") this.overrides = { ...this.overrides, checkQuorum: parseBool(value) };
      else if (key === "election-ticks") this.overrides = { ...this.overrides, electionTicks: Number(value) };
      else if (key === "heartbeat-ticks") this.overrides = { ...this.overrides, heartbeatTicks: Number(value) };
      else throw new ScriptError(`add-nodes: unknown option ${key}`);
    }
    const voters = Array.from({ length: count }, (_, index) => index + 1);
    for (const id of voters) {
      const storage = new MemoryStorage();
      const raft = new RaftNode(this.config(id, voters), storage);
      this.nodes.set(id, {
        id,
        raft,
        storage,
        autoPersist: true,
        durableIndex: 0n,
        crashed: false,
        initialVoters: voters,
        initialLearners: [],
      });
      this.out.push(formatStatus(raft.status()));
    }
  }

  /** add-learner-node ID: a new, empty node that starts as a learner among the current voters (a joining replica). */
  private addLearnerNode(id: NodeId): void {
    if (this.nodes.has(id)) throw new ScriptError(`add-learner-node: node ${id} exists`);
    const voters = this.nodes.get(1)?.raft.membership().voters ?? [];
    const storage = new MemoryStorage();
    const raft = new RaftNode({ ...this.config(id, voters), learners: [id] }, storage);
    this.nodes.set(id, {
      id,
      raft,
      storage,
      autoPersist: true,
      durableIndex: 0n,
      crashed: false,
      initialVoters: voters,
      initialLearners: [id],
    });
    this.out.push(formatStatus(raft.status()), `${id} ${formatMembership(raft.membership())}`);
  }

  /** propose-change ID add-learner|promote|remove NODE */
  private proposeChange(id: NodeId, type: string, target: NodeId): void {
    if (type !== "add-learner" && type !== "promote" && type !== "remove") throw new ScriptError(`propose-change: unknown type ${type}`);
    const node = this.upNode(id);
    this.observe(node, () => {
      const result = node.raft.proposeConfigChange({ type, node: target, context: new Uint8Array(0) });
      if (result.ok) this.out.push(`${id} appended config ${type} ${target} at ${result.term}/${result.index}`);
      else this.out.push(`${id} refused ${type} ${target}: ${"error" in result ? result.error.message : result.reason}`);
    });
  }

  private config(id: NodeId, voters: readonly NodeId[] = this.node(id).initialVoters): RaftConfig {
    // No randomness: a timeout is electionTicks plus the node's jitter (0 by default), so the script chooses who campaigns.
    const randomInt = (bound: number): number => Math.min(this.jitter.get(id) ?? 0, bound - 1);
    return { ...DEFAULT_RAFT_CONFIG, id, voters, randomInt, ...this.overrides };
  }

  private node(id: NodeId): EnvNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new ScriptError(`no node ${id}`);
    return node;
  }

  /** Runs one input of a node and prints the role, term and leader changes it caused. */
  private observe(node: EnvNode, input: () => void, indent = ""): void {
    const before = node.raft.status();
    input();
    for (const line of describeChange(before, node.raft.status())) this.out.push(indent + line);
  }

  private upNode(id: NodeId): EnvNode {
    const node = this.node(id);
    if (node.crashed) throw new ScriptError(`node ${id} is down`);
    return node;
  }

  /** Ticks until the node leaves the follower role (its election timeout elapsed), bounded. */
  private campaign(id: NodeId): void {
    const node = this.upNode(id);
    const role = node.raft.status().role;
    if (role !== "follower") throw new ScriptError(`campaign: ${id} is ${role}, not a follower (tick-election times it out again)`);
    const ticksMax = 2 * this.config(id).electionTicks;
    for (let tick = 0; tick < ticksMax && node.raft.status().role === "follower"; tick++) {
      this.observe(node, () => node.raft.tick());
    }
    if (node.raft.status().role === "follower") this.out.push(`${id} is still a follower after ${ticksMax} ticks`);
  }

  private tick(id: NodeId, times: number): void {
    const node = this.upNode(id);
    for (let tick = 0; tick < times; tick++) this.observe(node, () => node.raft.tick());
  }

  private propose(id: NodeId, data: string): void {
    const node = this.upNode(id);
    const bytes = Buffer.from(data, "latin1");
    this.observe(node, () => {
      const result = node.raft.propose(new Uint8Array(bytes));
      this.out.push(
        result.ok
          ? `${id} appended ${formatData(bytes)} at ${result.term}/${result.index}`
          : `${id} refused the proposal: ${result.reason} (leader hint ${result.leaderHint})`,
      );
    });
  }

  /** Handles one Ready as the LogStore does: write, send, apply, advance; then reports durability (auto mode). */
  private processReady(id: NodeId): boolean {
    const node = this.upNode(id);
    if (!node.raft.hasReady()) return false;
    const ready = node.raft.ready();
    this.out.push(`> ${id} handling Ready`, ...formatReady(ready).map((line) => `  ${line}`));
    if (ready.hardState !== undefined) node.storage.setHardState(ready.hardState);
    if (ready.snapshot !== undefined) {
      node.storage.installSnapshot(ready.snapshot);
      node.durableIndex = ready.snapshot.index;
    }
    if (ready.truncateAfter !== undefined) {
      node.storage.truncateAfter(ready.truncateAfter);
      if (node.durableIndex > ready.truncateAfter) node.durableIndex = ready.truncateAfter;
    }
    node.storage.append(ready.entries);
    this.network.push(...ready.messages);
    node.raft.advance(ready);
    if (node.autoPersist) this.reportDurable(node, "  ");
    return true;
  }

  /** compact ID INDEX: snapshot at INDEX (<= applied) and drop the log up to it, as the LogStore does. */
  private compact(id: NodeId, index: bigint): void {
    const node = this.upNode(id);
    const applied = node.raft.status().applied;
    if (index > applied) throw new ScriptError(`compact: ${id} applied only ${applied}`);
    const term = node.storage.term(index);
    if (term === undefined) throw new ScriptError(`compact: ${id} has no entry ${index}`);
    const membership = node.raft.membershipAt(index);
    if (membership === undefined) throw new ScriptError(`compact: ${id} knows no membership at ${index}`);
    node.storage.compact({ index, term, ...membership });
    this.out.push(`${id} compacted through ${term}/${index}; first index ${node.storage.firstIndex()}`);
  }

  /** report-snapshot ID TO finished|failed: the transfer of ID's snapshot to TO ended. */
  private reportSnapshot(id: NodeId, to: NodeId, outcome: string): void {
    if (outcome !== "finished" && outcome !== "failed") throw new ScriptError(`report-snapshot: finished or failed, got ${outcome}`);
    const node = this.upNode(id);
    node.raft.reportSnapshot(to, outcome);
    const progress = node.raft.progressOf(to);
    this.out.push(
      `${id} progress of ${to}: ${progress === undefined ? "none" : `${progress.state} match=${progress.match} next=${progress.next}`}`,
    );
  }

  private persist(id: NodeId): void {
    this.reportDurable(this.upNode(id), "");
  }

  private reportDurable(node: EnvNode, indent: string): void {
    const last = node.storage.lastIndex();
    const term = node.storage.term(last);
    if (last <= node.durableIndex || term === undefined) return;
    node.durableIndex = last;
    this.out.push(`${indent}${node.id} persisted through ${term}/${last}`);
    this.observe(node, () => node.raft.persisted(last, term), indent);
  }

  private persistMode(id: NodeId, mode: string): void {
    if (mode !== "auto" && mode !== "manual") throw new ScriptError(`persist-mode: auto or manual, got ${mode}`);
    this.node(id).autoPersist = mode === "auto";
  }

  /** Steps every queued message addressed to `id`, in the order sent; drops those the network loses. */
  private deliver(id: NodeId): boolean {
    const node = this.nodes.get(id);
    if (node === undefined) return this.dropUnknown(id);
    const inbox = this.network.filter((message) => message.to === id);
    if (inbox.length === 0) return false;
    this.network = this.network.filter((message) => message.to !== id);
    this.out.push(`> ${id} receiving messages`);
    for (const message of inbox) {
      const lost = node.crashed ? "DROPPED (down)" : this.partitioned(message.from, id) ? "DROPPED (partition)" : undefined;
      this.out.push(`  ${formatMessage(message)}${lost === undefined ? "" : ` ${lost}`}`);
      if (lost === undefined) this.observe(node, () => node.raft.step(message), "  ");
    }
    return true;
  }

  /** Messages to a node that was never started are lost (a member the script has not added). */
  private dropUnknown(id: NodeId): boolean {
    const inbox = this.network.filter((message) => message.to === id);
    if (inbox.length === 0) return false;
    this.network = this.network.filter((message) => message.to !== id);
    this.out.push(`> ${id} receiving messages`, ...inbox.map((message) => `  ${formatMessage(message)} DROPPED (no such node)`));
    return true;
  }

  private stabilize(ids: readonly NodeId[]): void {
    for (let round = 0; round < STABILIZE_ROUNDS_MAX; round++) {
      let progressed = false;
      for (const id of ids) {
        if (!this.node(id).crashed && this.processReady(id)) progressed = true;
      }
      for (const id of ids) {
        if (this.deliver(id)) progressed = true;
      }
      if (!progressed) return;
    }
    throw new ScriptError(`stabilize: still busy after ${STABILIZE_ROUNDS_MAX} rounds`);
  }

  /** partition 1 | 2 3: messages between different groups are dropped until heal. */
  private partition(words: readonly string[]): void {
    const groups = new Map<NodeId, number>();
    words
      .join(" ")
      .split("|")
      .forEach((group, position) => {
        for (const word of group
          .trim()
          .split(/\s+/)
          .filter((text) => text !== ""))
          groups.set(parseId(word), position);
      });
    for (const id of this.nodes.keys()) {
      if (!groups.has(id)) throw new ScriptError(`partition: node ${id} is in no group`);
    }
    this.groups = groups;
  }

  private partitioned(from: NodeId, to: NodeId): boolean {
    return this.groups !== undefined && this.groups.get(from) !== this.groups.get(to);
  }

  /** The node stops; what it wrote but never reported durable is lost. */
  private crash(id: NodeId): void {
    const node = this.upNode(id);
    node.crashed = true;
    const lost = node.storage.lastIndex() - node.durableIndex;
    node.storage.truncateAfter(node.durableIndex);
    this.out.push(`${id} crashed${lost > 0n ? ` (lost ${lost} unsynced entries)` : ""}`);
  }

  /** A new RaftNode from what storage holds; the application keeps what it applied. */
  private restart(id: NodeId): void {
    const node = this.node(id);
    if (!node.crashed) throw new ScriptError(`restart: node ${id} is up`);
    const appliedIndex = node.raft.status().applied;
    node.storage = new MemoryStorage(node.storage.hardState(), node.storage.allEntries(), node.storage.snapshot());
    node.raft = new RaftNode({ ...this.config(id), learners: node.initialLearners, appliedIndex }, node.storage);
    node.crashed = false;
    this.out.push(formatStatus(node.raft.status()));
  }

  private printLog(id: NodeId): void {
    const node = this.node(id);
    const entries = node.storage.allEntries();
    const commit = node.storage.hardState().commit;
    const snapshot = node.storage.snapshot();
    this.out.push(`${id} log (commit ${commit}):${entries.length === 0 ? " empty" : ""}`);
    if (snapshot !== undefined) this.out.push(`  snapshot ${formatSnapshot(snapshot)}, first index ${node.storage.firstIndex()}`);
    for (const entry of entries) this.out.push(`  ${formatEntry(entry)}`);
  }
}

function formatReady(ready: Ready): string[] {
  const lines: string[] = [];
  if (ready.hardState !== undefined) {
    const { term, vote, commit } = ready.hardState;
    lines.push(`HardState term=${term} vote=${vote} commit=${commit}${ready.hardStateMustSync ? " (must sync)" : ""}`);
  }
  if (ready.snapshot !== undefined) lines.push(`Snapshot ${formatSnapshot(ready.snapshot)}`);
  if (ready.truncateAfter !== undefined) lines.push(`Truncate after index ${ready.truncateAfter}`);
  if (ready.entries.length > 0) lines.push("Entries:", ...ready.entries.map((entry) => `  ${formatEntry(entry)}`));
  if (ready.committedEntries.length > 0) {
    lines.push("CommittedEntries:", ...ready.committedEntries.map((entry) => `  ${formatEntry(entry)}`));
  }
  if (ready.messages.length > 0) lines.push("Messages:", ...ready.messages.map((message) => `  ${formatMessage(message)}`));
  if (ready.membership !== undefined) lines.push(`Membership ${formatMembership(ready.membership)}`);
  return lines;
}

/** A mistake in the script itself (not the core's behaviour): fails the test instead of printing. */
class ScriptError extends Error {}

function argAt(command: Command, position: number): string {
  const value = command.args[position];
  if (value === undefined) throw new ScriptError(`${command.name}: missing argument ${position + 1}`);
  return value;
}

function parseId(word: string): NodeId {
  const id = Number(word);
  if (!Number.isInteger(id) || id <= 0) throw new ScriptError(`not a node id: ${word}`);
  return id;
}

function parseBool(word: string): boolean {
  if (word !== "true" && word !== "false") throw new ScriptError(`not a boolean: ${word}`);
  return word === "true";
}

// ---- the runner ---------------------------------------------------------------

const scripts = readdirSync(TESTDATA_DIR)
  .filter((name) => name.endsWith(".txt"))
  .sort();

test("there are interaction scripts", () => {
  expect(scripts.length).toBeGreaterThanOrEqual(6);
});

describe.each(scripts)("%s", (name) => {
  test("prints what the script expects", () => {
    const path = join(TESTDATA_DIR, name);
    const text = readFileSync(path, "utf8");
    const parts = parseScript(path, text);
    const env = new InteractionEnv();
    const outputs = new Map<ScriptPart, readonly string[]>();
    const mismatches: string[] = [];
    for (const part of parts) {
      if (part.kind !== "command") continue;
      let output: string[];
      try {
        output = env.run(parseCommand(part.text));
      } catch (error) {
        throw new Error(`${path}:${part.line}: ${part.text}: ${error instanceof Error ? error.message : String(error)}`);
      }
      outputs.set(part, output);
      if (output.join("\n") !== part.expected.join("\n") && mismatches.length === 0) {
        const differs = output.findIndex((line, position) => line !== part.expected[position]);
        const lineDiffering = differs < 0 ? output.length + 1 : differs + 1;
        mismatches.push(
          `${path}:${part.line}: ${part.text} (output differs from line ${lineDiffering})`,
          "expected:",
          ...part.expected.map((line) => `  ${line}`),
          "actual:",
          ...output.map((line) => `  ${line}`),
          "(REWRITE=1 regenerates the expected output: commit it only if you understand the change)",
        );
      }
    }
    if (REWRITE) {
      writeFileSync(path, renderScript(parts, outputs));
      return;
    }
    if (mismatches.length > 0) throw new Error(mismatches.join("\n"));
  });
});
