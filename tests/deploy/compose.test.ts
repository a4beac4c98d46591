// There is no Docker engine on our machines, so docker-compose.yml is checked
// here instead: it parses, every service is complete, and every command is
// exactly what the local cluster runs for that process (packages/cluster plan).
import fs from "node:fs";
import path from "node:path";
import { parse } from "yaml";
import { COMPOSE_DATA_DIR, COMPOSE_TLS_INIT_SERVICE, composeTlsInitCommand, planForCompose, type ProcessSpec } from "@logplayer/cluster";

const repoRoot = path.join(__dirname, "..", "..");

interface ComposeService {
  build?: unknown;
  environment?: Record<string, string>;
  image?: string;
  command?: string[];
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test?: string[]; interval?: string; retries?: number };
  depends_on?: Record<string, { condition: string }>;
}

function loadCompose(): { services: Record<string, ComposeService>; volumes?: Record<string, unknown> } {
  const text = fs.readFileSync(path.join(repoRoot, "docker-compose.yml"), "utf8");
  return parse(text, { merge: true }) as { services: Record<string, ComposeService> };
}

describe("docker-compose.yml", () => {
  const compose = loadCompose();
  const plan = planForCompose();
  const byName = new Map<string, ProcessSpec>(plan.map((p) => [p.name, p]));

  const tlsMount = `tls:${COMPOSE_DATA_DIR}/tls`;

  it("runs exactly the processes of the local cluster's plan, and the one-shot certificate service", () => {
    expect(Object.keys(compose.services).sort()).toEqual([...plan.map((p) => p.name), COMPOSE_TLS_INIT_SERVICE].sort());
  });

  it("the certificate service makes every certificate the plan's processes and tools use, into the tls volume", () => {
    const init = compose.services[COMPOSE_TLS_INIT_SERVICE]!;
    expect(init.command).toEqual(composeTlsInitCommand(plan));
    expect(init.volumes).toEqual([tlsMount]);
    expect(Object.keys(compose.volumes ?? {})).toContain("tls");
    // The command names a script the image builds.
    expect(fs.existsSync(path.join(repoRoot, "packages", "tls", "src", "main.ts"))).toBe(true);
  });

  it.each(planForCompose().map((p) => [p.name]))("%s: runs with mTLS from the tls volume, after the certificates exist", (name) => {
    const spec = byName.get(name)!;
    const service = compose.services[name]!;
    const tlsDir = spec.args[spec.args.indexOf("--tls-dir") + 1];
    expect(tlsDir).toBe(`${COMPOSE_DATA_DIR}/tls`);
    expect(spec.args).not.toContain("--insecure");
    expect(service.volumes).toContain(`${tlsMount}:ro`);
    expect(service.depends_on?.[COMPOSE_TLS_INIT_SERVICE]).toEqual({ condition: "service_completed_successfully" });
  });

  it.each(planForCompose().map((p) => [p.name]))("%s: command is the local cluster's command", (name) => {
    const spec = byName.get(name)!;
    const service = compose.services[name]!;
    expect(service.command).toEqual([`services/${spec.service}/dist/main.js`, ...spec.args]);
    expect(service.environment ?? {}).toEqual(spec.env);
    // The entry point exists once built (the image runs `node <command>`).
    expect(fs.existsSync(path.join(repoRoot, "services", spec.service, "src", "main.ts"))).toBe(true);
  });

  it.each(planForCompose().map((p) => [p.name]))("%s: image, ports, volumes and healthcheck", (name) => {
    const spec = byName.get(name)!;
    const service = compose.services[name]!;
    expect(service.build ?? service.image).toBeDefined();
    // Published on the host's loopback only: nothing is reachable from other machines unless the operator says so.
    expect(service.ports).toEqual([`127.0.0.1:${spec.grpcPort}:${spec.grpcPort}`, `127.0.0.1:${spec.metricsPort}:${spec.metricsPort}`]);
    if (spec.dataDir !== undefined) {
      // Stateful processes keep their data dir on a named volume.
      const mount = service.volumes?.find((v) => v.endsWith(`:${spec.dataDir}`));
      expect(mount).toBeDefined();
      expect(Object.keys(compose.volumes ?? {})).toContain(mount!.split(":")[0]);
    } else {
      // The LogPlayer keeps no durable state, so it must not get a volume that suggests otherwise: only the certificates.
      expect(service.volumes).toEqual([`${tlsMount}:ro`]);
    }
    expect(service.healthcheck?.test).toEqual(["CMD", "node", "-e", readyProbeScript(spec.metricsPort)]);
    expect(service.healthcheck?.retries).toBeGreaterThan(0);
  });

  it("starts LogPlayers only after the LogStore and every shard are healthy", () => {
    for (const player of plan.filter((p) => p.service === "logplayer")) {
      const deps = compose.services[player.name]!.depends_on ?? {};
      expect(Object.keys(deps).sort()).toEqual(
        [...plan.filter((p) => p.service !== "logplayer").map((p) => p.name), COMPOSE_TLS_INIT_SERVICE].sort(),
      );
      for (const other of plan.filter((p) => p.service !== "logplayer")) {
        expect(deps[other.name]).toEqual({ condition: "service_healthy" });
      }
    }
  });

  it("the Dockerfile installs dependencies from the lockfile alone, then builds every service entry point", () => {
    const dockerfile = fs.readFileSync(path.join(repoRoot, "Dockerfile"), "utf8").replace(/\\\n/g, " ");
    const buildStage = dockerfile.slice(0, dockerfile.lastIndexOf("FROM "));
    // The dependency layer: only the lockfile and workspace list are copied before `pnpm fetch`, so a source
    // edit does not invalidate it; the sources come after.
    const fetchAt = buildStage.indexOf("RUN pnpm fetch");
    const sourcesAt = buildStage.indexOf("COPY . .");
    expect(buildStage).toMatch(/COPY pnpm-lock\.yaml pnpm-workspace\.yaml \.\/\n/);
    expect(fetchAt).toBeGreaterThan(buildStage.indexOf("COPY pnpm-lock.yaml"));
    expect(sourcesAt).toBeGreaterThan(fetchAt);
    expect(buildStage.slice(0, fetchAt)).not.toMatch(/COPY (packages|services|\.)/);
    expect(buildStage).toMatch(/pnpm install --offline --frozen-lockfile\n/);
    expect(buildStage).toMatch(/pnpm -s build/);
    // Then production dependencies only, and the runtime tree the last stage copies.
    expect(buildStage).toMatch(/pnpm install --offline --frozen-lockfile --prod +&& scripts\/image-tree\.sh \/image/);
    expect(fs.existsSync(path.join(repoRoot, "scripts", "image-tree.sh"))).toBe(true);
    expect(dockerfile).toMatch(/ENTRYPOINT \["node"\]/);
  });

  it("the final image is the production tree on a current Node LTS, without sources or dev tooling", () => {
    const dockerfile = fs.readFileSync(path.join(repoRoot, "Dockerfile"), "utf8");
    const runtimeStage = dockerfile.slice(dockerfile.lastIndexOf("FROM "));
    const copies = [...runtimeStage.matchAll(/^COPY .*$/gm)].map((m) => m[0]);
    expect(copies).toEqual(["COPY --from=build /image /app"]);
    for (const from of dockerfile.matchAll(/^FROM node:(\d+)-/gm)) expect(Number(from[1])).toBeGreaterThanOrEqual(22);
    const script = fs.readFileSync(path.join(repoRoot, "scripts", "image-tree.sh"), "utf8");
    // dist/ without tests or source maps; never src/.
    expect(script).toMatch(/! -name '\*\.test\.js'/);
    expect(script).toMatch(/! -name '\*\.map'/);
    expect(script).not.toMatch(/\bsrc\b/);
  });

  it("the image creates every volume mount point, owned by the user the services run as", () => {
    const dockerfile = fs.readFileSync(path.join(repoRoot, "Dockerfile"), "utf8").replace(/\\\n/g, " ");
    const runtimeStage = dockerfile.slice(dockerfile.lastIndexOf("FROM "));
    expect(runtimeStage).toMatch(/^USER node$/m);
    expect(runtimeStage).toMatch(/chown -R node:node \/data\b/);
    const created = new Set([...runtimeStage.matchAll(/mkdir -p ([^&\n]+)/g)].flatMap((m) => m[1]!.trim().split(/\s+/)));
    const mountPoints = Object.values(compose.services).flatMap((service) => (service.volumes ?? []).map((v) => v.split(":")[1]!));
    expect(mountPoints.length).toBeGreaterThan(0);
    for (const mountPoint of mountPoints) expect(created).toContain(mountPoint);
  });
});

/** The healthcheck: one HTTP GET of /readyz on the metrics port (tests/deploy/healthcheck.process.test.ts runs it). */
export function readyProbeScript(metricsPort: number): string {
  return `require('http').get('http://127.0.0.1:${metricsPort}/readyz', (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))`;
}
