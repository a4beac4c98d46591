import { assert } from "@logplayer/base";

/**
 * The leader's view of one follower, after etcd's tracker.Progress.
 *
 * probe:     we do not know where the follower's log matches ours; send one
 *            AppendEntries at a time and walk `next` back on rejection.
 * replicate: the follower matched at `match`; stream entries optimistically
 *            (next advances on send), up to inflightMessagesMax unacknowledged.
 * snapshot:  the follower needs entries we compacted away; a snapshot at
 *            `pendingSnapshot` is on its way: send nothing until the follower
 *            acknowledges it, or the adapter reports the transfer's end.
 */
export type ProgressState = "probe" | "replicate" | "snapshot";

export class Progress {
  /** Highest index known to be durable on the follower and to match our log. */
  match = 0n;
  /** Next index to send. */
  next: bigint;
  state: ProgressState = "probe";
  /** In probe state: one message is outstanding, wait for its answer (or a heartbeat answer). */
  probeSent = false;
  /** In snapshot state: the index of the snapshot being sent. */
  pendingSnapshot = 0n;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** Last index of each AppendEntries in flight, oldest first (replicate state). */
  private readonly inflight: bigint[] = [];

  constructor(
    next: bigint,
    private readonly inflightMessagesMax: number,
  ) {
    assert(next >= 1n, "progress: next must be >= 1");
    this.next = next;
  }

  /** True when nothing more may be sent to this follower right now. */
  isPaused(): boolean {
    if (this.state === "snapshot") return true;
    if (this.state === "probe") return this.probeSent;
    return this.inflight.length >= this.inflightMessagesMax;
  }

  inflightCount(): number {
    return this.inflight.length;
  }

  becomeProbe(): void {
    this.state = "probe";
    this.probeSent = false;
    this.inflight.length = 0;
    this.next = this.match + 1n;
  }

  /** A snapshot at `index` is being sent: wait for it (next moves past it, so an older rejection is stale). */
  becomeSnapshot(index: bigint): void {
    this.state = "snapshot";
    this.probeSent = false;
    this.inflight.length = 0;
    this.pendingSnapshot = index;
    this.next = index + 1n;
  }

  becomeReplicate(): void {
    this.state = "replicate";
    this.probeSent = false;
    this.inflight.length = 0;
    this.next = this.match + 1n;
  }

  /** Records an AppendEntries carrying entries up to `lastIndex` (count may be 0). */
  sentEntries(count: number, lastIndex: bigint): void {
    if (this.state === "replicate") {
      if (count > 0) {
        assert(lastIndex + 1n > this.next, "progress: sent entries must advance next");
        this.next = lastIndex + 1n;
        assert(this.inflight.length < this.inflightMessagesMax, "progress: inflight window overflow");
        this.inflight.push(lastIndex);
      }
    } else {
      this.probeSent = true;
    }
  }

  /** An acceptance up to `index`. Returns false when it tells us nothing new. */
  maybeUpdate(index: bigint): boolean {
    let updated = false;
    if (index > this.match) {
      this.match = index;
      this.probeSent = false;
      updated = true;
    }
    if (this.next < index + 1n) this.next = index + 1n;
    while (this.inflight.length > 0 && (this.inflight[0] ?? 0n) <= index) this.inflight.shift();
    return updated;
  }

  /**
   * A rejection of prevIndex `rejected`; `matchHint` is the highest index that
   * might match (from the follower's conflict hint). Returns false if the
   * rejection is stale (answers a message older than our current view).
   */
  maybeDecrTo(rejected: bigint, matchHint: bigint): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.becomeProbe();
    } else if (this.next - 1n !== rejected) {
      return false;
    }
    const hinted = rejected < matchHint + 1n ? rejected : matchHint + 1n;
    this.next = hinted > this.match + 1n ? hinted : this.match + 1n;
    this.probeSent = false;
    return true;
  }

  /**
   * The follower lost entries it had acknowledged (its disk was wiped and it
   * rejoins; see RaftNode's rejoin section): `match` no longer holds. Probe
   * again from just after what it still has. Lowering match only lowers what
   * the leader counts toward a commit, never the commit index itself.
   */
  lostLog(followerLastIndex: bigint): void {
    this.match = 0n;
    this.becomeProbe();
    this.next = followerLastIndex + 1n;
  }

  /** A heartbeat answer proves the link works: let one more message through. */
  onHeartbeatResponse(): void {
    this.probeSent = false;
    if (this.state === "replicate" && this.inflight.length >= this.inflightMessagesMax) this.inflight.shift();
  }
}
