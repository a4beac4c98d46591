// Runs docker-compose.yml's healthcheck command for real (no Docker here): the
// same `node -e` script, pointed at a local HTTP server that answers /readyz
// the way the services do.
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { parse } from "yaml";

const repoRoot = path.resolve(__dirname, "..", "..");
const compose = parse(fs.readFileSync(path.join(repoRoot, "docker-compose.yml"), "utf8")) as {
  services: Record<string, { healthcheck?: { test?: string[] } }>;
};

/** Runs the probe as its own process (asynchronously: the server it asks lives in this one). */
function runProbe(script: string): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["-e", script], { stdio: "ignore", timeout: 10_000 });
    child.once("exit", (code) => resolve(code));
  });
}

describe("the compose healthcheck", () => {
  let server: http.Server;
  let port = 0;
  let readyStatus = 200;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      res.writeHead(req.url === "/readyz" ? readyStatus : 404);
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  // Every long-running service; the one-shot certificate service exits once done and has no healthcheck.
  const longRunning = Object.keys(compose.services).filter((name) => name !== "tls-init");

  it.each(longRunning)("%s: exit 0 when /readyz is 200, 1 when it is 503 or nothing listens", async (name) => {
    const test = compose.services[name]!.healthcheck?.test;
    expect(test?.slice(0, 3)).toEqual(["CMD", "node", "-e"]);
    const script = test![3]!;
    const metricsPort = /127\.0\.0\.1:(\d+)\/readyz/.exec(script)?.[1];
    expect(metricsPort).toBeDefined();
    const local = script.replace(`127.0.0.1:${metricsPort}/`, `127.0.0.1:${port}/`);
    readyStatus = 200;
    expect(await runProbe(local)).toBe(0);
    readyStatus = 503;
    expect(await runProbe(local)).toBe(1);
    // Port 1 on loopback: nothing listens there.
    expect(await runProbe(script.replace(`127.0.0.1:${metricsPort}/`, "127.0.0.1:1/"))).toBe(1);
  });
});
