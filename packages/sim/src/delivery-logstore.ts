import { assert } from "@logplayer/common";
import { decodeRecord, encodeEntryPayload, encodeRecord, recoverWal, segmentFileName } from "@logplayer/wal";
import type { LogEntry, Transaction } from "@logplayer/proto";
import type { SimNodeId } from "./network";
import { SimDisk } from "./sim-disk";
import type { DeliveryEnv, DeliveryMessage } from "./delivery-messages";
import type { TrimReport } from "@logplayer/delivery";
import { SimWalTrimming, type LifecycleConfig } from "./delivery-lifecycle";

/** The WAL's one segment file: records as written, durable ones only. */
interface WalFile {
  readonly chunks: Buffer[];
}

function appendChunk(file: WalFile, chunk: Buffer): WalFile {
  file.chunks.push(chunk);
  return file;
}

export interface SimLogStoreConfig {
  /** Group commit: appends wait up to this long for the fsync that makes them durable. */
  readonly fsyncMsMax: number;
  /** Entries per Read response message. */
  readonly readEntriesPerMessageMax: number;
  /** Transport keepalive period on every open read (carries the count of messages sent, not the commit LSN). */
  readonly keepaliveMs: number;
  readonly pendingAppendsMax: number;
  /** Open reads per replica. */
  readonly readsMax: number;
  /** Replicas serving reads (1 or 3). */
  readonly replicas: number;
  /** A follower learns of a commit up to this long after the leader (the next append or heartbeat). */
  readonly followerLagMsMax: number;
  readonly leaderAtStart: number;
  /** The storage lifecycle (trimming); absent: nothing is ever trimmed. */
  readonly lifecycle?: LifecycleConfig;
}

/** What one replica knows: how far the log is committed, and who leads. */
interface ReplicaView {
  commitLsn: bigint;
  leader: number | null;
}

/** Far more than the reads a run keeps in flight at once, so an evicted id's copies are long delivered. */
const READS_SEEN_MAX = 4096;

interface Subscription {
  readonly readId: number;
  /** The replica serving it. */
  readonly replica: number;
  readonly player: SimNodeId;
  readonly playerIncarnation: number;
  nextLsn: bigint;
  /** 0 = tail forever (the main stream). */
  readonly toLsn: bigint;
  /** Messages sent on this read; each carries its number. */
  sentCount: number;
}

/**
 * The LogStore: appends framed with the REAL wal-record encoder onto a
 * SimDisk, acknowledged (committed) only at fsync; a crash loses unsynced
 * records and may leave a torn one; restart runs the REAL recoverWal over
 * the bytes and must find exactly the committed log. With several replicas
 * the log is still this one (replication is the Raft simulator's subject),
 * but reads are served by replicas on their own nodes, each knowing the
 * commit LSN and the leader as a Raft replica would: the leader at once, a
 * follower up to followerLagMsMax later; a leader change (changeLeader)
 * reaches each replica after its own delay, and none knows a leader
 * meanwhile.
 */
export class SimLogStore {
  incarnation = 0;
  up = false;
  /** The committed log: entries[i].lsn === i + 1. */
  readonly committed: LogEntry[] = [];
  readonly disk: SimDisk<WalFile, Buffer>;
  #pending: { readonly entry: LogEntry; readonly record: Buffer; readonly writeId: number; readonly onCommit: (lsn: bigint) => void }[] =
    [];
  #subscriptions = new Map<number, Subscription>();
  #leader = 0;
  readonly #views: ReplicaView[];
  /**
   * Read ids already received, oldest first (bounded): a Read request is one RPC, so a copy the network
   * duplicated must not start the read again with fresh message numbers (the reader would drop them).
   */
  readonly #readsSeen = new Set<number>();
  stats = { crashes: 0, tornTails: 0, recoveries: 0, leaderChanges: 0 };
  /** The replica's trim point and first LSN (docs/storage-lifecycle.md), durable. */
  readonly trimming: SimWalTrimming | null;

  constructor(
    private readonly env: DeliveryEnv,
    private readonly config: SimLogStoreConfig,
  ) {
    assert(config.replicas >= 1, "logstore: at least one replica");
    this.disk = new SimDisk<WalFile, Buffer>({ chunks: [] }, appendChunk, config.pendingAppendsMax);
    this.#views = Array.from({ length: config.replicas }, () => ({ commitLsn: 0n, leader: config.leaderAtStart }));
    this.#leader = config.leaderAtStart;
    this.trimming = config.lifecycle === undefined ? null : new SimWalTrimming(config.lifecycle, env.shardCount);
  }

  get leader(): number {
    return this.#leader;
  }

  /** The commit LSN replica `replica` knows (never more than is committed). */
  knownCommitLsn(replica: number): bigint {
    return this.#views[replica]?.commitLsn ?? 0n;
  }

  /** An election: `leader` leads from now; each replica learns it (and the commit LSN) after its own delay. */
  changeLeader(leader: number): void {
    if (!this.up || leader === this.#leader) return;
    this.#leader = leader;
    this.stats.leaderChanges += 1;
    const incarnation = this.incarnation;
    this.env.sim.trace(`logstore: replica ${leader} becomes the leader`);
    this.#views.forEach((view, replica) => {
      view.leader = null;
      this.env.sim.schedule(this.env.sim.prng.between(1, this.config.followerLagMsMax * 4), () => {
        if (incarnation !== this.incarnation || this.#leader !== leader) return;
        view.leader = leader;
        this.#learnCommit(replica, this.commitLsn);
      });
    });
  }

  /** The lowest LSN a Read may start at. */
  get firstLsn(): bigint {
    return this.trimming?.firstLsn ?? 1n;
  }

  /** LogStore.ReportTrimPoint: judged and acted on by the production rule. */
  reportTrimPoint(report: TrimReport): void {
    if (!this.up || this.trimming === null) return;
    const lastLsn = this.commitLsn + BigInt(this.#pending.length);
    const firstBefore = this.trimming.firstLsn;
    this.trimming.report(report, this.committed, lastLsn, this.env.sim.nowMs);
    if (this.trimming.firstLsn !== firstBefore)
      this.env.sim.trace(`logstore trims to first LSN ${this.trimming.firstLsn} (trim point ${this.trimming.trimPoint})`);
  }

  get commitLsn(): bigint {
    return BigInt(this.committed.length);
  }

  get pendingAppends(): number {
    return this.#pending.length;
  }

  boot(): void {
    assert(!this.up, "logstore booted twice");
    this.#recover();
    this.up = true;
    this.incarnation += 1;
    this.#subscriptions = new Map();
    // Every replica restarts knowing the committed log (it was durable on a majority) and the leader.
    for (const view of this.#views) {
      view.commitLsn = this.commitLsn;
      view.leader = this.#leader;
    }
    this.env.sim.trace(`logstore boots (incarnation ${this.incarnation}, commit ${this.commitLsn})`);
    this.#scheduleHeartbeat(this.incarnation);
  }

  /** Power loss: unsynced records are gone; maybe the first of them is half written. */
  crash(tornTail: boolean): void {
    if (!this.up) return;
    this.up = false;
    this.incarnation += 1;
    this.stats.crashes += 1;
    const torn = this.#pending[0]?.record;
    this.#pending = [];
    this.disk.crash();
    if (tornTail && torn !== undefined) {
      const cut = this.env.sim.prng.between(1, torn.length - 1);
      this.disk.writeSynced((file) => appendChunk(file, torn.subarray(0, cut)));
      this.stats.tornTails += 1;
    }
    this.env.sim.trace(`logstore CRASHES (commit ${this.commitLsn}${tornTail && torn !== undefined ? ", torn tail" : ""})`);
  }

  /** A client append; null when down or overloaded. `onCommit` runs once the entry is durable. */
  append(txn: Transaction, clientSeq: bigint, onCommit: (lsn: bigint) => void): bigint | null {
    if (!this.up || this.#pending.length >= this.config.pendingAppendsMax) return null;
    const lsn = this.commitLsn + BigInt(this.#pending.length) + 1n;
    const entry: LogEntry = { lsn, term: 1n, txn, commitTimeNs: BigInt(this.env.sim.nowMs) * 1_000_000n, clientId: "sim", clientSeq };
    const record = encodeRecord(entry, encodeEntryPayload(entry));
    const writeId = this.disk.write(record);
    this.#pending.push({ entry, record, writeId, onCommit });
    const incarnation = this.incarnation;
    this.env.sim.schedule(this.env.sim.prng.between(0, this.config.fsyncMsMax), () => this.#fsyncDone(incarnation, writeId));
    return lsn;
  }

  /** A message to replica `replica`. */
  receive(from: SimNodeId, message: DeliveryMessage, replica = 0): void {
    if (!this.up) return;
    if (message.kind === "cancel") {
      this.#subscriptions.delete(message.readId);
      return;
    }
    assert(message.kind === "read", `logstore: unexpected ${message.kind}`);
    if (this.#readsSeen.has(message.readId)) return;
    this.#readsSeen.add(message.readId);
    if (this.#readsSeen.size > READS_SEEN_MAX) this.#readsSeen.delete(this.#readsSeen.values().next().value as number);
    const incarnation = this.env.incarnationOf(from);
    const known = this.knownCommitLsn(replica);
    const bad = message.fromLsn < 1n || (message.toLsn !== 0n && message.toLsn < message.fromLsn) || message.toLsn > known;
    if (incarnation !== null && !bad && message.fromLsn < this.firstLsn) {
      const trimmed = { fromLsn: message.fromLsn, firstLsn: this.firstLsn };
      this.#send(replica, from, { kind: "read-end", readId: message.readId, seq: 1, ok: false, trimmed });
      return;
    }
    let reads = 0;
    for (const subscription of this.#subscriptions.values()) if (subscription.replica === replica) reads += 1;
    if (incarnation === null || bad || reads >= this.config.readsMax) {
      // OUT_OF_RANGE / RESOURCE_EXHAUSTED: the reader retries.
      this.#send(replica, from, { kind: "read-end", readId: message.readId, seq: 1, ok: false });
      return;
    }
    const subscription: Subscription = {
      readId: message.readId,
      replica,
      player: from,
      playerIncarnation: incarnation,
      nextLsn: message.fromLsn,
      toLsn: message.toLsn,
      sentCount: 0,
    };
    this.#subscriptions.set(message.readId, subscription);
    this.#serve(subscription);
  }

  #fsyncDone(incarnation: number, writeId: number): void {
    if (incarnation !== this.incarnation || !this.up) return;
    this.disk.sync(writeId);
    while (this.#pending.length > 0 && (this.#pending[0]?.writeId ?? Infinity) <= writeId) {
      const head = this.#pending.shift();
      assert(head !== undefined && head.entry.lsn === this.commitLsn + 1n, "logstore: commits out of order");
      this.committed.push(head.entry);
      this.env.checker.onCommit(head.entry);
      head.onCommit(head.entry.lsn);
    }
    const commitLsn = this.commitLsn;
    this.#views.forEach((_, replica) => {
      if (replica === this.#leader) {
        this.#learnCommit(replica, commitLsn);
        return;
      }
      // A follower hears of the commit with the leader's next message.
      const lagMs = this.env.sim.prng.between(0, this.config.followerLagMsMax);
      this.env.sim.schedule(lagMs, () => incarnation === this.incarnation && this.up && this.#learnCommit(replica, commitLsn));
    });
  }

  /** Replica `replica` learns that the log is committed up to `commitLsn`: its tailing reads go on. */
  #learnCommit(replica: number, commitLsn: bigint): void {
    const view = this.#views[replica];
    if (view === undefined || commitLsn <= view.commitLsn) return;
    assert(commitLsn <= this.commitLsn, `logstore: replica ${replica} told of commit ${commitLsn} beyond ${this.commitLsn}`);
    view.commitLsn = commitLsn;
    for (const subscription of this.#subscriptions.values()) {
      if (subscription.toLsn === 0n && subscription.replica === replica) this.#serve(subscription);
    }
  }

  /** Sends what the subscription may see now; ends a bounded read once it is all sent. */
  #serve(subscription: Subscription): void {
    const replica = subscription.replica;
    const view = this.#views[replica]!;
    const last = subscription.toLsn === 0n ? view.commitLsn : subscription.toLsn;
    while (subscription.nextLsn <= last) {
      const from = Number(subscription.nextLsn) - 1;
      const count = Math.min(this.config.readEntriesPerMessageMax, Number(last) - from);
      const entries = this.committed.slice(from, from + count);
      subscription.nextLsn += BigInt(entries.length);
      subscription.sentCount += 1;
      const seq = subscription.sentCount;
      const fromLeader = replica === this.#leader && view.leader === replica;
      const { readId } = subscription;
      this.#send(replica, subscription.player, {
        kind: "entries",
        readId,
        seq,
        entries,
        commitLsn: view.commitLsn,
        leader: view.leader,
        fromLeader,
      });
    }
    if (subscription.toLsn !== 0n) {
      subscription.sentCount += 1;
      this.#send(replica, subscription.player, { kind: "read-end", readId: subscription.readId, seq: subscription.sentCount, ok: true });
      this.#subscriptions.delete(subscription.readId);
    }
  }

  /**
   * The transport's keepalive (gRPC/HTTP2 pings, TCP): dead readers' reads go; a live reader learns how many
   * messages each open read has sent, so a lost one breaks its call instead of leaving it waiting forever.
   * It carries no protocol state: the LogPlayer's core never sees it.
   */
  #scheduleHeartbeat(incarnation: number): void {
    this.env.sim.schedule(this.config.keepaliveMs, () => {
      if (incarnation !== this.incarnation || !this.up) return;
      for (const subscription of [...this.#subscriptions.values()]) {
        const replica = subscription.replica;
        if (!this.env.peerAlive(this.env.replicaNode(replica), subscription.player, subscription.playerIncarnation)) {
          this.#subscriptions.delete(subscription.readId);
        } else {
          this.#send(replica, subscription.player, { kind: "keepalive", readId: subscription.readId, sentCount: subscription.sentCount });
        }
      }
      this.#scheduleHeartbeat(incarnation);
    });
  }

  /** Restart: the real recovery over the durable bytes must give back exactly the committed log. */
  #recover(): void {
    const file = this.disk.durableState();
    const bytes = Buffer.concat(file.chunks);
    const recovery = recoverWal([{ fileName: segmentFileName(1n), bytes }]);
    const validBytes = recovery.segments[0]?.validBytes ?? 0;
    const entries: LogEntry[] = [];
    for (let offset = 0; offset < validBytes; ) {
      const record = decodeRecord(bytes, offset);
      assert(record.kind === "record", `logstore: recovered record at ${offset} does not decode`);
      entries.push(record.entry);
      offset += record.recordBytes;
    }
    if (recovery.lastLsn !== this.commitLsn || entries.length !== this.committed.length) {
      this.env.checker.fail(`durability: WAL recovery found LSN ${recovery.lastLsn}, the committed log ends at ${this.commitLsn}`);
    }
    entries.forEach((entry, i) => {
      const committed = this.committed[i];
      if (committed === undefined || !sameEntry(entry, committed))
        this.env.checker.fail(`durability: recovered LSN ${entry.lsn} differs from the committed entry`);
    });
    // Cut the torn tail, as the adapter truncates the file.
    if (recovery.tornTail !== null) this.disk.writeSynced(() => ({ chunks: [bytes.subarray(0, validBytes)] }));
    this.stats.recoveries += 1;
  }

  #send(replica: number, to: SimNodeId, message: DeliveryMessage): void {
    this.env.network.send(this.env.replicaNode(replica), to, message);
  }
}

function sameEntry(a: LogEntry, b: LogEntry): boolean {
  const mutationsA = a.txn?.mutations ?? [];
  const mutationsB = b.txn?.mutations ?? [];
  return (
    a.lsn === b.lsn &&
    a.term === b.term &&
    a.clientSeq === b.clientSeq &&
    mutationsA.length === mutationsB.length &&
    mutationsA.every((m, i) => m.key === mutationsB[i]?.key && Buffer.compare(m.value, mutationsB[i]?.value ?? Buffer.alloc(0)) === 0)
  );
}
