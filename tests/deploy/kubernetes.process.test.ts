// There is no Kubernetes cluster on our machines, so deploy/kubernetes is checked here instead: every object
// validates against the Kubernetes API schemas (kubernetes-models ships them), and every pod's command, run by
// a real `sh` with the pod's host name and `node` replaced by a stub that prints its arguments, is exactly what
// the local cluster runs for that process (packages/cluster planForKubernetes). A process test: it spawns `sh`.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { KUBERNETES_DATA_DIR, kubernetesTlsInitArgs, planForKubernetes, type ProcessSpec } from "@logplayer/cluster";
import { Service } from "kubernetes-models/v1/Service";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { StatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { parseAllDocuments } from "yaml";

const repoRoot = path.join(__dirname, "..", "..");
const manifestDir = path.join(repoRoot, "deploy", "kubernetes");

interface Probe {
  httpGet?: { path?: string; port?: string | number };
}
interface Container {
  name: string;
  image: string;
  command: string[];
  ports: { name: string; containerPort: number }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: { requests?: Record<string, string> };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface Workload {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec: {
    replicas?: number;
    serviceName?: string;
    podManagementPolicy?: string;
    clusterIP?: string;
    publishNotReadyAddresses?: boolean;
    maxUnavailable?: number;
    selector?: { matchLabels?: Record<string, string> } & Record<string, string>;
    template?: { spec: { containers: Container[]; volumes?: { name: string; secret?: { secretName: string } }[] } };
    volumeClaimTemplates?: { metadata: { name: string } }[];
    ports?: { name: string; port: number }[];
  };
}

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  Service,
  Deployment,
  StatefulSet,
  PodDisruptionBudget,
};

function loadManifests(): Workload[] {
  return fs
    .readdirSync(manifestDir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .flatMap((file) =>
      parseAllDocuments(fs.readFileSync(path.join(manifestDir, file), "utf8")).map((doc) => {
        expect(doc.errors).toEqual([]);
        return doc.toJS() as Workload;
      }),
    );
}

/** Runs a pod's command as the container would, with `node` stubbed to print its arguments as JSON. */
function commandArgs(command: string[], hostname: string, stubDir: string): string[] {
  const [program, ...rest] = command;
  const env = { PATH: `${stubDir}:${process.env.PATH ?? "/usr/bin:/bin"}`, HOSTNAME: hostname };
  const out = execFileSync(program === "node" ? path.join(stubDir, "node") : program!, rest, { env, encoding: "utf8", timeout: 10_000 });
  return JSON.parse(out) as string[];
}

describe("deploy/kubernetes", () => {
  const manifests = loadManifests();
  const plan = planForKubernetes();
  const byKind = (kind: string, name: string): Workload => {
    const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
    expect(found).toBeDefined();
    return found!;
  };
  let stubDir = "";

  beforeAll(() => {
    stubDir = fs.mkdtempSync(path.join(os.tmpdir(), "k8s-node-stub-"));
    fs.writeFileSync(path.join(stubDir, "node"), `#!${process.execPath}\nprocess.stdout.write(JSON.stringify(process.argv.slice(2)));\n`, {
      mode: 0o755,
    });
  });
  afterAll(() => fs.rmSync(stubDir, { recursive: true, force: true }));

  it("every object is valid against the Kubernetes API schemas", () => {
    expect(manifests.length).toBeGreaterThanOrEqual(8);
    for (const manifest of manifests) {
      const Model = MODELS[manifest.kind];
      expect(Model).toBeDefined();
      expect(() => new Model!(manifest as never).validate()).not.toThrow();
    }
  });

  it("the schema check catches a broken object", () => {
    const broken = structuredClone(byKind("StatefulSet", "logstore"));
    (broken.spec.template!.spec.containers[0]!.ports[0] as { containerPort: unknown }).containerPort = "seven";
    expect(() => new StatefulSet(broken as never).validate()).toThrow(/containerPort/);
  });

  // One workload per kind of process; pod i of a StatefulSet is the plan's i-th process of that kind.
  const workloads: [ProcessSpec["service"], string, string][] = [
    ["logstore", "StatefulSet", "logstore"],
    ["shard", "StatefulSet", "shard"],
    ["logplayer", "Deployment", "logplayer"],
  ];

  it.each(workloads)("%s: each pod runs the local cluster's command for its process", (service, kind, name) => {
    const workload = byKind(kind, name);
    const processes = plan.filter((p) => p.service === service);
    expect(workload.spec.replicas).toBe(processes.length);
    const container = workload.spec.template!.spec.containers[0]!;
    processes.forEach((spec, ordinal) => {
      const args = commandArgs(container.command, `${name}-${ordinal}`, stubDir);
      expect(args).toEqual([`services/${service}/dist/main.js`, ...spec.args]);
    });
  });

  it.each(workloads)("%s: ports, probes, resources, TLS secret and data volume", (service, kind, name) => {
    const workload = byKind(kind, name);
    const spec = plan.find((p) => p.service === service)!;
    const container = workload.spec.template!.spec.containers[0]!;
    expect(container.ports).toEqual([
      { name: "grpc", containerPort: spec.grpcPort },
      { name: "metrics", containerPort: spec.metricsPort },
    ]);
    expect(container.livenessProbe?.httpGet).toEqual({ path: "/healthz", port: "metrics" });
    expect(container.readinessProbe?.httpGet).toEqual({ path: "/readyz", port: "metrics" });
    expect(Object.keys(container.resources?.requests ?? {}).sort()).toEqual(["cpu", "memory"]);
    expect(container.volumeMounts).toContainEqual({ name: "tls", mountPath: `${KUBERNETES_DATA_DIR}/tls`, readOnly: true });
    const tlsVolume = workload.spec.template!.spec.volumes?.find((v) => v.name === "tls");
    expect(tlsVolume?.secret?.secretName).toBe(`logplayer-tls-${name}`);
    if (spec.dataDir !== undefined) {
      expect(path.posix.dirname(spec.dataDir)).toBe(KUBERNETES_DATA_DIR);
      expect(container.volumeMounts).toContainEqual({ name: "data", mountPath: KUBERNETES_DATA_DIR });
      expect(workload.spec.volumeClaimTemplates?.map((t) => t.metadata.name)).toEqual(["data"]);
    } else {
      expect(container.volumeMounts?.map((m) => m.name)).toEqual(["tls"]);
    }
  });

  it.each([["logstore"], ["shard"]])("%s: stable peer names from a headless Service, parallel start, a disruption budget", (name) => {
    const set = byKind("StatefulSet", name);
    const service = byKind("Service", name);
    const budget = byKind("PodDisruptionBudget", name);
    expect(set.spec.serviceName).toBe(name);
    expect(set.spec.podManagementPolicy).toBe("Parallel");
    expect(service.spec.clusterIP).toBe("None");
    expect(service.spec.publishNotReadyAddresses).toBe(true);
    expect(service.spec.selector).toEqual(set.spec.selector?.matchLabels);
    expect(budget.spec.selector?.matchLabels).toEqual(set.spec.selector?.matchLabels);
    expect(budget.spec.maxUnavailable).toBe(1);
    // The addresses in every command resolve to these pods: <name>-<ordinal>.<service>.
    const hosts = plan.filter((p) => p.name.startsWith(name)).map((p) => p.grpcAddress.split(":")[0]);
    expect(hosts).toEqual(hosts.map((_, i) => `${name}-${i}.${name}`));
  });

  it("the README makes the certificates every process needs, and each Secret holds exactly its group's", () => {
    const readme = fs.readFileSync(path.join(manifestDir, "README.md"), "utf8");
    expect(readme).toContain(`node packages/tls/dist/main.js ${kubernetesTlsInitArgs("./k8s-tls").join(" ")}`);
    const secrets = new Map(
      [...readme.matchAll(/kubectl create secret generic (\S+) (.+)/g)].map((m) => [
        m[1]!,
        [...m[2]!.matchAll(/--from-file=k8s-tls\/(\S+)/g)].map((f) => f[1]!).sort(),
      ]),
    );
    const files = (role: string, names: string[]): string[] => names.flatMap((n) => [`${role}-${n}.crt`, `${role}-${n}.key`]);
    expect(secrets.get("logplayer-tls-logstore")).toEqual(["ca.crt", ...files("logstore-replica", ["1", "2", "3"])].sort());
    expect(secrets.get("logplayer-tls-shard")).toEqual(["ca.crt", ...files("shard", ["0", "1", "2"])].sort());
    expect(secrets.get("logplayer-tls-logplayer")).toEqual(["ca.crt", ...files("logplayer", ["main"])].sort());
    for (const contents of secrets.values()) expect(contents).not.toContain("ca.key");
  });
});
