import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { unavailable } from "@logplayer/common";
import { MutationKind, PROTOCOL_VERSION } from "@logplayer/proto";
import { startFakeCluster, type FakeCluster } from "./fake-cluster.fixture";
import { runLpctl } from "./lpctl-run";

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

describe("lpctl (runLpctl in-process against fake services)", () => {
  let cluster: FakeCluster;

  beforeAll(async () => {
    cluster = await startFakeCluster(3);
  });

  afterAll(() => cluster.close());

  async function lpctl(...args: string[]): Promise<Ran> {
    return lpctlWithStdin(Buffer.alloc(0), ...args);
  }

  async function lpctlWithStdin(stdin: Buffer, ...args: string[]): Promise<Ran> {
    let stdout = "";
    let stderr = "";
    const flags = [
      "--logstore",
      cluster.logStore.address,
      "--shards",
      cluster.shardAddresses.join(","),
      "--timeout-ms",
      "3000",
      "--insecure",
    ];
    const io = { stdout: (t: string) => (stdout += t), stderr: (t: string) => (stderr += t), readStdin: async () => stdin };
    const code = await runLpctl([...flags, ...args], io);
    return { code, stdout, stderr };
  }

  it("put prints the committed LSN and get prints the value", async () => {
    const put = await lpctl("put", "greeting", "hello world");
    expect(put).toEqual({ code: 0, stdout: `committed lsn=${cluster.logStore.commitLsn}\n`, stderr: "" });
    const get = await lpctl("get", "greeting", "--min-lsn", String(cluster.logStore.commitLsn));
    expect(get).toEqual({ code: 0, stdout: "hello world\n", stderr: "" });
    const shard = cluster.shards.find((s) => s.gets.some((g) => g.key === "greeting"))!;
    expect(shard.gets.at(-1)!.minLsn).toBe(cluster.logStore.commitLsn);
  });

  it("get of a missing key prints (not found) and exits 2", async () => {
    expect(await lpctl("get", "no-such-key")).toEqual({ code: 2, stdout: "(not found)\n", stderr: "" });
    const json = await lpctl("--json", "get", "no-such-key");
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ found: false, value: null });
  });

  it("txn commits several mutations as one transaction", async () => {
    const before = cluster.logStore.appends.length;
    const ran = await lpctl("txn", "put:t:a=1", "append:t:b=x", "add:t:c=5", "delete:t:d");
    expect(ran.code).toBe(0);
    expect(ran.stdout).toMatch(/^committed lsn=\d+\n$/);
    expect(cluster.logStore.appends).toHaveLength(before + 1);
    const txn = cluster.logStore.appends.at(-1)!.txn!;
    expect(txn.mutations.map((m) => [m.kind, m.key])).toEqual([
      [MutationKind.MUTATION_KIND_PUT, "t:a"],
      [MutationKind.MUTATION_KIND_APPEND, "t:b"],
      [MutationKind.MUTATION_KIND_ADD, "t:c"],
      [MutationKind.MUTATION_KIND_DELETE, "t:d"],
    ]);
  });

  it("add accepts a negative amount, append and delete work, scan prints key<TAB>value", async () => {
    expect((await lpctl("add", "s:n", "10")).code).toBe(0);
    expect((await lpctl("add", "s:n", "-3")).code).toBe(0);
    expect((await lpctl("append", "s:m", "ab")).code).toBe(0);
    expect((await lpctl("append", "s:m", "cd")).code).toBe(0);
    expect((await lpctl("put", "s:z", "gone")).code).toBe(0);
    expect((await lpctl("delete", "s:z")).code).toBe(0);
    const scan = await lpctl("scan", "s:");
    expect(scan).toEqual({ code: 0, stdout: "s:m\tabcd\ns:n\t7\n", stderr: "" });
    expect((await lpctl("scan", "s:", "--limit", "1")).stdout).toBe("s:m\tabcd\n");
  });

  it("--hex reads and prints values as hex; --json prints LSNs as strings", async () => {
    expect((await lpctl("--hex", "put", "bin", "00ff0a")).code).toBe(0);
    expect((await lpctl("--hex", "get", "bin")).stdout).toBe("00ff0a\n");
    const json = await lpctl("--json", "put", "j", "v");
    expect(JSON.parse(json.stdout)).toEqual({ lsn: String(cluster.logStore.commitLsn) });
  });

  it("status prints the LogStore and every shard", async () => {
    const ran = await lpctl("status");
    expect(ran.code).toBe(0);
    expect(ran.stdout).toContain(`logstore ${cluster.logStore.address}  role=leader term=1 commit_lsn=${cluster.logStore.commitLsn}`);
    expect(ran.stdout).toContain("cluster fake-cluster  shard_map=fnv1a32/3");
    for (let id = 0; id < 3; id++)
      expect(ran.stdout).toMatch(
        new RegExp(`shard ${id}  ${cluster.shardAddresses[id]}  applied_lsn=\\d+  durable_lsn=\\d+  restorable_lsn=\\d+  lag=\\d+`),
      );
    const json = JSON.parse((await lpctl("--json", "status")).stdout) as { shards: unknown[]; logStore: { clusterId: string } };
    expect(json.shards).toHaveLength(3);
    expect(json.logStore.clusterId).toBe("fake-cluster");
  });

  it("status exits 1 and names the problem when a shard does not answer (so a script can gate on it)", async () => {
    const shard = cluster.shards[1]!;
    shard.readFaults.push(...Array.from({ length: 1000 }, () => unavailable("shard is down (test)")));
    try {
      const ran = await lpctl("--timeout-ms", "500", "status");
      expect(ran.code).toBe(1);
      expect(ran.stderr).toContain(`lpctl: unhealthy: shard 1 at ${cluster.shardAddresses[1]} does not answer (UNAVAILABLE)`);
      const json = await lpctl("--timeout-ms", "500", "--json", "status");
      expect(json.code).toBe(1);
      expect(JSON.parse(json.stdout)).toMatchObject({ healthy: false, problems: [expect.stringContaining("shard 1")] });
    } finally {
      shard.readFaults.length = 0;
    }
    const healthy = await lpctl("--json", "status");
    expect(healthy.code).toBe(0);
    expect(JSON.parse(healthy.stdout)).toMatchObject({ healthy: true, problems: [] });
  });

  it("values come from a file (@FILE), stdin (-) or literally (@@TEXT)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lpctl-values-"));
    try {
      const file = path.join(dir, "value.bin");
      const bytes = Buffer.from([0, 255, 10, 64]);
      fs.writeFileSync(file, bytes);
      expect((await lpctl("put", "v:file", `@${file}`)).code).toBe(0);
      expect(Buffer.from(cluster.logStore.appends.at(-1)!.txn!.mutations[0]!.value)).toEqual(bytes);
      expect((await lpctlWithStdin(Buffer.from("from stdin"), "append", "v:stdin", "-")).code).toBe(0);
      expect(Buffer.from(cluster.logStore.appends.at(-1)!.txn!.mutations[0]!.value).toString()).toBe("from stdin");
      expect((await lpctl("put", "v:at", "@@literal")).code).toBe(0);
      expect(Buffer.from(cluster.logStore.appends.at(-1)!.txn!.mutations[0]!.value).toString()).toBe("@literal");
      const missing = await lpctl("put", "v:missing", `@${path.join(dir, "nope")}`);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/^lpctl: INVALID_ARGUMENT: cannot read value file .*nope/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("--version names the client and protocol versions", async () => {
    const ran = await lpctl("--version");
    expect(ran.code).toBe(0);
    expect(ran.stdout).toBe(`lpctl 0.1.0 (protocol version ${PROTOCOL_VERSION})\n`);
  });

  it("fails at once with 'connection refused' when nothing listens at any LogStore address (not after its deadline)", async () => {
    // A deadline far beyond jest's timeout: only failing fast can pass.
    const ran = await lpctl("--logstore", "127.0.0.1:1,127.0.0.1:2", "--timeout-ms", "3600000", "get", "k");
    expect(ran.code).toBe(1);
    expect(ran.stderr).toBe(
      "lpctl: UNAVAILABLE: connection refused at 127.0.0.1:1, 127.0.0.1:2: nothing listens there (is the cluster running? pnpm start)\n",
    );
  });

  it("health exits 0 for a SERVING service and 1 when nothing listens", async () => {
    expect(await lpctl("health", cluster.shardAddresses[0]!)).toEqual({ code: 0, stdout: "SERVING\n", stderr: "" });
    const down = await lpctl("--timeout-ms", "500", "health", "127.0.0.1:1");
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^lpctl: UNAVAILABLE: /);
  });

  it("errors are one line on stderr naming the gRPC code, exit 1", async () => {
    const bad = await lpctl("txn", "put:a=1", "bogus");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe(
      'lpctl: INVALID_ARGUMENT: txn argument 2 ("bogus"): expected put:KEY=VALUE, append:KEY=VALUE, add:KEY=N or delete:KEY\n',
    );
    const mismatch = await lpctl("--shards", cluster.shardAddresses[0]!, "get", "a");
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toMatch(/^lpctl: FAILED_PRECONDITION: .*has 3 shards but 1 shard addresses were given\n$/);
    const usage = await lpctl("get");
    expect(usage.code).toBe(1);
    expect(usage.stderr).toContain("missing required argument");
  });
});
