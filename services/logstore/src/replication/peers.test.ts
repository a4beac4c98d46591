import { encodeConfigChange } from "@logplayer/raft";
import { memberAddressProblem, parsePeers } from "./peers";
import { checkRaftIdentity, parseRaftState } from "./raft-state-file";
import { messageFromWire, messageToWire, type StepMessage } from "./wire";

describe("--peers", () => {
  it("parses id=host:port lists, sorted by id", () => {
    expect(parsePeers("2=b:2,1=a:1")).toEqual([
      { id: 1, address: "a:1" },
      { id: 2, address: "b:2" },
    ]);
  });

  it.each(["", "1=a", "x=a:1", "0=a:1", "1=a:1,1=b:2", "1=a:70000"])("refuses %j", (text) => {
    expect(() => parsePeers(text)).toThrow(/--peers/);
  });

  it("checks a member address: host:port with a name, IPv4 or bracketed IPv6 host", () => {
    for (const good of ["a:1", "127.0.0.1:65535", "[::1]:7001", "logstore-4.example:7001"]) expect(memberAddressProblem(good)).toBeNull();
    for (const bad of ["", "a", "a:0", "a:70000", ":1", "a b:1", "a:1:2", `${"h".repeat(300)}:1`, "::1:7001"]) {
      expect([bad, memberAddressProblem(bad)]).toEqual([bad, expect.any(String)]);
    }
  });
});

describe("raft-state.json identity", () => {
  const identity = { clusterId: "c", replicaId: 1, peersHash: "h" };
  it("round-trips and refuses another cluster or replica; a new --peers list is not refused (membership lives in the log)", () => {
    const text = JSON.stringify({ formatVersion: 1, clusterId: "c", replicaId: 1, peersHash: "h", term: "7", vote: 2, commit: "40" });
    expect(parseRaftState(text, "f")).toEqual({ identity, hardState: { term: 7n, vote: 2, commit: 40n } });
    expect(() => checkRaftIdentity(identity, identity)).not.toThrow();
    expect(() => checkRaftIdentity(identity, { ...identity, clusterId: "d" })).toThrow(/cluster/);
    expect(() => checkRaftIdentity(identity, { ...identity, replicaId: 2 })).toThrow(/replica/);
    expect(() => checkRaftIdentity(identity, { ...identity, peersHash: "replicated" })).not.toThrow();
    expect(() => parseRaftState("{}", "f")).toThrow(/malformed/);
  });
});

describe("Raft messages on the wire", () => {
  const messages: StepMessage[] = [
    {
      type: "append",
      from: 1,
      to: 2,
      term: 3n,
      prevIndex: 4n,
      prevTerm: 2n,
      commit: 4n,
      entries: [
        { index: 5n, term: 3n, kind: "leader-noop", data: Buffer.alloc(0) },
        { index: 6n, term: 3n, kind: "normal", data: Buffer.from([1, 2, 3]) },
        {
          index: 7n,
          term: 3n,
          kind: "config",
          data: Buffer.from(encodeConfigChange({ type: "add-learner", node: 4, context: Buffer.from("d:4") })),
        },
      ],
    },
    { type: "append-response", from: 2, to: 1, term: 3n, reject: true, index: 4n, hintIndex: 2n, hintTerm: 1n },
    { type: "heartbeat", from: 1, to: 2, term: 3n, commit: 6n },
    { type: "heartbeat-response", from: 2, to: 1, term: 3n },
    { type: "pre-vote", from: 3, to: 1, term: 4n, lastIndex: 6n, lastTerm: 3n },
    { type: "vote-response", from: 1, to: 3, term: 4n, reject: false },
  ];
  it.each(messages.map((m) => [m.type, m]))("%s round-trips", (_type, message) => {
    const plain = (value: unknown): unknown =>
      JSON.parse(JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v instanceof Uint8Array ? [...v] : v)));
    expect(plain(messageFromWire(messageToWire(message)))).toEqual(plain(message));
  });
});
