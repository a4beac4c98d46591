import { damagedProbeAnswer, decideBlankStart, decideDamagedStart, type ProbeAnswer } from "./blank-start";

const blank: ProbeAnswer = { state: "blank", term: 0n, lastIndex: 0n, commit: 0n };
const voter = (term: bigint, lastIndex: bigint, commit = lastIndex): ProbeAnswer => ({ state: "voter", term, lastIndex, commit });
const answers = (entries: Record<number, ProbeAnswer | undefined>) => new Map(Object.entries(entries).map(([id, a]) => [Number(id), a]));

describe("decideBlankStart", () => {
  test("bootstraps only when every peer has answered and none has a history", () => {
    expect(decideBlankStart(1, answers({ 2: blank, 3: voter(0n, 0n) }), false)).toEqual({ kind: "bootstrap" });
    expect(decideBlankStart(1, answers({ 2: blank, 3: undefined }), false)).toEqual({ kind: "wait", missing: [3] });
  });

  test("an existing cluster without --join is refused, naming the newest peer, even with peers missing", () => {
    const decision = decideBlankStart(1, answers({ 2: undefined, 3: voter(4n, 17n) }), false);
    expect(decision.kind).toBe("refuse");
    expect(decision.kind === "refuse" && decision.reason).toMatch(/replica 3 .*term 4 .*LSN 17.*--join/);
    // A peer that is itself rejoining counts as history, whatever its term.
    expect(decideBlankStart(1, answers({ 2: { state: "rejoining", term: 0n, lastIndex: 0n, commit: 0n }, 3: blank }), false).kind).toBe(
      "refuse",
    );
  });

  test("with --join it waits for every peer, then rejoins in the highest term with its vote spent, until the highest commit", () => {
    expect(decideBlankStart(1, answers({ 2: undefined, 3: voter(4n, 17n) }), true)).toEqual({ kind: "wait", missing: [2] });
    const decision = decideBlankStart(1, answers({ 2: voter(6n, 9n, 8n), 3: voter(4n, 17n, 15n) }), true);
    expect(decision).toEqual({
      kind: "rejoin",
      hardState: { term: 6n, vote: 1, commit: 0n, rejoinUntil: 15n },
      existing: { id: 2, term: 6n, lastIndex: 9n },
    });
  });

  // Seen in CI on a fresh 3-replica cluster: 2 and 3 asked 1 (blank), formed the cluster and committed their no-op
  // before 1's own probe returned; 1 then refused to start as if it had lost its data.
  test("peers that formed the cluster after asking this blank replica make it a new voter, not a lost one", () => {
    expect(decideBlankStart(1, answers({ 2: voter(1n, 1n), 3: voter(1n, 1n) }), false, new Set([2, 3]))).toEqual({ kind: "bootstrap" });
    expect(decideBlankStart(1, answers({ 2: voter(1n, 1n), 3: undefined }), false, new Set([2, 3]))).toEqual({ kind: "bootstrap" });
    // One peer with a history that never asked it (it had a history already): the cluster is older, refuse.
    expect(decideBlankStart(1, answers({ 2: voter(1n, 1n), 3: voter(4n, 17n) }), false, new Set([2])).kind).toBe("refuse");
    expect(decideBlankStart(1, answers({ 2: voter(1n, 1n), 3: blank }), false, new Set()).kind).toBe("refuse");
  });

  test("--join on a new cluster bootstraps like everyone else", () => {
    expect(decideBlankStart(2, answers({ 1: blank, 3: blank }), true)).toEqual({ kind: "bootstrap" });
  });
});

describe("decideDamagedStart (a replica whose WAL lost its entries from a damaged record on)", () => {
  const stored = { term: 5n, vote: 2, commit: 40n };

  test("waits for every peer: the leader's commit index bounds what the lost suffix may have helped commit", () => {
    expect(decideDamagedStart(stored, 20n, answers({ 2: voter(5n, 50n, 48n), 3: undefined }))).toEqual({ kind: "wait", missing: [3] });
  });

  test("keeps its own term and vote, cuts its commit to the kept prefix, and rejoins until the highest commit known", () => {
    const decision = decideDamagedStart(stored, 20n, answers({ 2: voter(5n, 50n, 48n), 3: voter(4n, 30n, 30n) }));
    expect(decision).toEqual({ kind: "rejoin", hardState: { term: 5n, vote: 2, commit: 20n, rejoinUntil: 48n } });
  });

  test("its own commit index counts when the peers report less (their hard state may lag), and so does an earlier rejoin", () => {
    expect(decideDamagedStart(stored, 45n, answers({ 2: voter(5n, 50n, 10n), 3: blank }))).toEqual({
      kind: "rejoin",
      hardState: { term: 5n, vote: 2, commit: 40n, rejoinUntil: 40n },
    });
    expect(decideDamagedStart({ ...stored, rejoinUntil: 70n }, 45n, answers({ 2: voter(5n, 50n, 10n) }))).toMatchObject({
      hardState: { rejoinUntil: 70n },
    });
  });

  test("answers its peers' probes as rejoining, with the prefix it kept", () => {
    expect(damagedProbeAnswer(stored, 20n)).toEqual({ state: "rejoining", term: 5n, lastIndex: 20n, commit: 20n });
  });
});
