import { seededRandom } from "@logplayer/common";
import { DEFAULT_DEDUPE_LIMITS, DedupeTable, type DedupeEntry, type DedupeLimits } from "./dedupe-table";

function table(overrides: Partial<DedupeLimits> = {}): DedupeTable {
  return new DedupeTable({ ...DEFAULT_DEDUPE_LIMITS, clientsMax: 10, seqsPerClientMax: 10, ...overrides });
}

/** Applies `entry` at `lsn`, with no-ops (which only age the sessions) for the LSNs skipped. */
function at(dedupe: DedupeTable, lsn: bigint, entry: DedupeEntry): void {
  for (let next = dedupe.positionLsn + 1n; next < lsn; next++) dedupe.applyEntry(next, undefined);
  dedupe.applyEntry(lsn, entry);
}

const append = (clientId: string, clientSeq: bigint): DedupeEntry => ({ kind: "append", clientId, clientSeq });
const registration = (clientId: string): DedupeEntry => ({ kind: "registration", clientId });

describe("DedupeTable", () => {
  it("answers a known (client, seq) with its first LSN, a later seq as new, and a client without a session as no-session", () => {
    const dedupe = table();
    expect(dedupe.lookup("a", 1n, 0n)).toEqual({ kind: "no-session" });
    at(dedupe, 5n, append("a", 1n));
    at(dedupe, 9n, append("a", 1n)); // a second copy never replaces the first
    expect(dedupe.lookup("a", 1n, 0n)).toEqual({ kind: "duplicate", lsn: 5n });
    expect(dedupe.lookup("a", 2n, 0n)).toEqual({ kind: "new" });
    expect(dedupe.lookup("b", 1n, 0n)).toEqual({ kind: "no-session" });
  });

  it("keeps the last seqsPerClientMax seqs per client and refuses older unknown ones", () => {
    const dedupe = table({ seqsPerClientMax: 3 });
    for (let seq = 1n; seq <= 5n; seq++) at(dedupe, seq + 100n, append("a", seq));
    expect(dedupe.lookup("a", 5n, 0n)).toEqual({ kind: "duplicate", lsn: 105n });
    expect(dedupe.lookup("a", 3n, 0n)).toEqual({ kind: "duplicate", lsn: 103n });
    expect(dedupe.lookup("a", 2n, 0n)).toEqual({ kind: "too-old", oldestSeq: 3n });
    expect(dedupe.lookup("a", 6n, 0n)).toEqual({ kind: "new" });
  });

  it("evicts the least recently used session past clientsMax: its retries have no session, never new", () => {
    const dedupe = table({ clientsMax: 2, seqsPerClientMax: 4 });
    at(dedupe, 1n, append("a", 1n));
    at(dedupe, 2n, append("b", 1n));
    at(dedupe, 3n, append("a", 2n)); // a is now the most recent
    at(dedupe, 4n, append("c", 1n)); // evicts b
    expect(dedupe.clientCount).toBe(2);
    expect(dedupe.lookup("b", 1n, 0n)).toEqual({ kind: "no-session" });
    expect(dedupe.lookup("a", 1n, 0n)).toEqual({ kind: "duplicate", lsn: 1n });
    expect(dedupe.lookup("c", 1n, 0n)).toEqual({ kind: "duplicate", lsn: 4n });
    expect(dedupe.sessionsEnded).toEqual({ evicted: 1, expired: 0 });
  });

  it("remembers the last endedClientsMax ended client ids until they open a session again", () => {
    const dedupe = table({ clientsMax: 1, endedClientsMax: 2 });
    at(dedupe, 1n, append("a", 1n));
    at(dedupe, 2n, append("b", 1n)); // ends a
    expect(dedupe.sessionEnded("a")).toBe(true);
    expect(dedupe.sessionEnded("b")).toBe(false);
    expect(dedupe.sessionEnded("never")).toBe(false);
    at(dedupe, 3n, registration("a")); // ends b; a has a session again
    expect(dedupe.sessionEnded("a")).toBe(false);
    expect(dedupe.sessionEnded("b")).toBe(true);
    at(dedupe, 4n, append("c", 1n)); // ends a again; its new ending takes the oldest slot (its first)
    expect([dedupe.sessionEnded("a"), dedupe.sessionEnded("b")]).toEqual([true, true]);
    at(dedupe, 5n, append("d", 1n)); // ends c, which takes b's slot: b is forgotten
    expect([dedupe.sessionEnded("a"), dedupe.sessionEnded("b"), dedupe.sessionEnded("c")]).toEqual([true, false, true]);
    expect(dedupe.endedClientCount).toBe(2);
    expect(table({ endedClientsMax: 0, clientsMax: 1 }).endedClientCount).toBe(0);
  });

  it("a registration opens a session named by its LSN; another session id, or none, does not match it", () => {
    const dedupe = table();
    at(dedupe, 3n, registration("r"));
    expect(dedupe.lookup("r", 1n, 3n)).toEqual({ kind: "new" });
    expect(dedupe.lookup("r", 1n, 0n)).toEqual({ kind: "no-session" });
    at(dedupe, 4n, append("r", 1n));
    expect(dedupe.lookup("r", 1n, 3n)).toEqual({ kind: "duplicate", lsn: 4n });
    // Registering again replaces the session: the old one's retries no longer match.
    at(dedupe, 5n, registration("r"));
    expect(dedupe.lookup("r", 1n, 3n)).toEqual({ kind: "no-session" });
    expect(dedupe.lookup("r", 1n, 5n)).toEqual({ kind: "new" });
    expect(dedupe.clientCount).toBe(1);
  });

  it("expires a session unused for more than sessionIdleEntriesMax entries, counted in LSNs; each use renews it", () => {
    const dedupe = table({ sessionIdleEntriesMax: 5n });
    at(dedupe, 1n, registration("idle"));
    at(dedupe, 2n, registration("busy"));
    at(dedupe, 6n, undefined); // idle's age is 5: kept
    expect(dedupe.lookup("idle", 1n, 1n)).toEqual({ kind: "new" });
    at(dedupe, 7n, append("busy", 1n)); // idle's age is 6: expired; busy was used at 7
    expect(dedupe.lookup("idle", 1n, 1n)).toEqual({ kind: "no-session" });
    expect(dedupe.hasSession("idle")).toBe(false);
    at(dedupe, 12n, undefined);
    expect(dedupe.lookup("busy", 1n, 2n)).toEqual({ kind: "duplicate", lsn: 7n });
    at(dedupe, 13n, undefined);
    expect(dedupe.lookup("busy", 1n, 2n)).toEqual({ kind: "no-session" });
    expect(dedupe.sessionsEnded).toEqual({ evicted: 0, expired: 2 });
    expect(dedupe.clientCount).toBe(0);
  });

  it("applies LSNs strictly in order", () => {
    const dedupe = table();
    dedupe.applyEntry(1n, undefined);
    expect(() => dedupe.applyEntry(3n, undefined)).toThrow(/entry 3 applied after 1/);
  });

  it("matches a plain model over many wraps of the window, with seqs committed out of order and two clients interleaved", () => {
    const windowMax = 4;
    const dedupe = table({ seqsPerClientMax: windowMax });
    // The model: per client, the committed seqs in commit order; the window is the last windowMax of them.
    const committed = new Map<string, { seq: bigint; lsn: bigint }[]>([
      ["a", []],
      ["b", []],
    ]);
    let lsn = 0n;
    for (let i = 0; i < 60; i++) {
      const client = i % 3 === 0 ? "b" : "a";
      // Pairs committed swapped (2, 1, 4, 3, ...), as concurrent appends can be.
      const seq = BigInt(i % 2 === 0 ? i + 2 : i);
      lsn += 1n;
      at(dedupe, lsn, append(client, seq));
      committed.get(client)!.push({ seq, lsn });
      for (const [name, history] of committed) {
        const kept = history.slice(-windowMax);
        const evicted = history.slice(0, -windowMax);
        const evictedMax = evicted.reduce((max, e) => (e.seq > max ? e.seq : max), 0n);
        for (const { seq: probe, lsn: expected } of kept)
          expect(dedupe.lookup(name, probe, 0n)).toEqual({ kind: "duplicate", lsn: expected });
        for (const { seq: probe } of evicted)
          expect(dedupe.lookup(name, probe, 0n)).toEqual({ kind: "too-old", oldestSeq: evictedMax + 1n });
      }
    }
  });

  it("ends sessions as a plain model does (least recently used past clientsMax, idle past sessionIdleEntriesMax), over a seeded run", () => {
    const clientsMax = 3;
    const idleMax = 7n;
    const dedupe = table({ clientsMax, sessionIdleEntriesMax: idleMax, seqsPerClientMax: 100 });
    // The model: clientId -> its session id, last use and seqs; ended sessions are simply deleted.
    const model = new Map<string, { sessionLsn: bigint; lastUsedLsn: bigint; seqs: Map<bigint, bigint> }>();
    const random = seededRandom(11);
    const clients = ["a", "b", "c", "d", "e"];
    const nextSeq = new Map<string, bigint>();
    for (let lsn = 1n; lsn <= 400n; lsn++) {
      const client = clients[Math.floor(random() * clients.length)]!;
      const roll = random();
      if (roll < 0.15) {
        at(dedupe, lsn, registration(client));
        model.set(client, { sessionLsn: lsn, lastUsedLsn: lsn, seqs: new Map() });
      } else if (roll < 0.35) {
        at(dedupe, lsn, undefined);
      } else {
        const seq = (nextSeq.get(client) ?? 0n) + 1n;
        nextSeq.set(client, seq);
        at(dedupe, lsn, append(client, seq));
        const session = model.get(client) ?? { sessionLsn: 0n, lastUsedLsn: lsn, seqs: new Map<bigint, bigint>() };
        session.lastUsedLsn = lsn;
        session.seqs.set(seq, lsn);
        model.set(client, session);
      }
      while (model.size > clientsMax) {
        const [oldest] = [...model.entries()].sort((x, y) => (x[1].lastUsedLsn < y[1].lastUsedLsn ? -1 : 1));
        model.delete(oldest![0]);
      }
      for (const [name, session] of [...model]) if (lsn - session.lastUsedLsn > idleMax) model.delete(name);
      expect(dedupe.clientCount).toBe(model.size);
      for (const name of clients) {
        const session = model.get(name);
        expect(dedupe.hasSession(name)).toBe(session !== undefined);
        if (session === undefined) continue;
        for (const [seq, seqLsn] of session.seqs)
          expect(dedupe.lookup(name, seq, session.sessionLsn)).toEqual({ kind: "duplicate", lsn: seqLsn });
        expect(dedupe.lookup(name, 1000n, session.sessionLsn)).toEqual({ kind: "new" });
        expect(dedupe.lookup(name, 1000n, session.sessionLsn + 1n)).toEqual({ kind: "no-session" });
      }
    }
    expect(dedupe.sessionsEnded.evicted).toBeGreaterThan(0);
    expect(dedupe.sessionsEnded.expired).toBeGreaterThan(0);
  });
});
