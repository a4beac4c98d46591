import { memberAddressProblem, type Peer } from "./peers";

/**
 * Where each replica of the cluster is reached (its gRPC address), by Raft id.
 * Who is a member is the Raft core's (voters and learners, from the log); this
 * only maps ids to addresses, from three sources, later ones winning:
 * 1. --peers, given at start (at bootstrap, every member; later, a hint);
 * 2. the snapshot (snapshot.bin, or one installed from the leader), which
 *    records every member's address as of its index;
 * 3. the config entries of the log above the snapshot, in log order: an
 *    add-learner change carries the new replica's address as its context
 *    (memberContext), so every replica learns it with the entry.
 * Rebuilt the same way on every start (openReplication). An address learned
 * from an entry that a new leader later truncates stays until another entry
 * or snapshot names that id again: harmless, since only members get links.
 */
export class AddressBook {
  readonly #addresses = new Map<number, string>();

  constructor(peers: readonly Peer[]) {
    for (const peer of peers) this.#addresses.set(peer.id, peer.address);
  }

  /** Records where replica `id` is now; an empty address (a single voter's) is kept as "unknown". */
  set(id: number, address: string): void {
    this.#addresses.set(id, address);
  }

  /** Replica `id`'s address, or undefined when no source named it (or it has none: a single voter). */
  addressOf(id: number): string | undefined {
    const address = this.#addresses.get(id);
    return address === "" ? undefined : address;
  }

  /** The members among `ids` as peers, sorted by id; "" for one whose address is unknown. */
  peersOf(ids: readonly number[]): Peer[] {
    return [...ids].sort((a, b) => a - b).map((id) => ({ id, address: this.#addresses.get(id) ?? "" }));
  }
}

/** The context of an add-learner change: the new replica's address, UTF-8. */
export function memberContext(address: string): Uint8Array {
  return Buffer.from(address, "utf8");
}

/** The address an add-learner change's context names, or null when it names none a replica could dial. */
export function addressOfMemberContext(context: Uint8Array): string | null {
  const address = Buffer.from(context.buffer, context.byteOffset, context.byteLength).toString("utf8");
  return memberAddressProblem(address) === null ? address : null;
}
