import { assert } from "@logplayer/base";
import type { NodeId } from "./types";

/**
 * Majority decisions over one set of voters. Joint consensus would combine
 * two of these (a decision needs both majorities), which is why the core asks
 * this module rather than counting by itself.
 */
export class MajorityConfig {
  readonly voters: readonly NodeId[];

  constructor(voters: readonly NodeId[]) {
    assert(voters.length > 0, "quorum: no voters");
    this.voters = [...voters].sort((a, b) => a - b);
  }

  quorum(): number {
    return Math.floor(this.voters.length / 2) + 1;
  }

  /** Highest index that a majority has acknowledged (missing voters count as 0). */
  committedIndex(matchOf: (id: NodeId) => bigint): bigint {
    const matches = this.voters.map(matchOf).sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
    const index = matches[this.quorum() - 1];
    assert(index !== undefined, "quorum: fewer matches than quorum");
    return index;
  }

  /** Outcome of an election given the answers received so far. */
  voteResult(votes: ReadonlyMap<NodeId, boolean>): "won" | "lost" | "pending" {
    let granted = 0;
    let rejected = 0;
    for (const voter of this.voters) {
      const vote = votes.get(voter);
      if (vote === true) granted++;
      else if (vote === false) rejected++;
    }
    if (granted >= this.quorum()) return "won";
    if (this.voters.length - rejected < this.quorum()) return "lost";
    return "pending";
  }

  /** True when `active(id)` holds for a majority. */
  hasQuorum(active: (id: NodeId) => boolean): boolean {
    return this.voters.filter(active).length >= this.quorum();
  }
}
