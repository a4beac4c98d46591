// The console page in a real headless browser (Debian's chromium through puppeteer-core) against a real
// local cluster: it shows every shard up, a killed shard down, the same shard up again after a restart,
// and live delay histograms. Takes a screenshot; with LP_UPDATE_SCREENSHOT=1 it replaces docs/console.png (a plain
// test run leaves the checkout clean). Page conditions are strings: they run in
// the browser, and the tests compile without the DOM's types.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { LocalCluster, startLocalConsole } from "@logplayer/cluster";
import { type LogPlayerClient, mutation } from "@logplayer/client";
import type { RunningConsole } from "@logplayer/console";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { tempDataDir } from "./harness";

const SCREENSHOT =
  process.env.LP_UPDATE_SCREENSHOT === "1"
    ? path.resolve(__dirname, "..", "..", "docs", "console.png")
    : path.join(os.tmpdir(), `lp-console-${process.pid}.png`);
/** Bound of every wait on the page: the machine may be loaded, the state arrives every second. */
const PAGE_WAIT_MS = 60_000;

/** Debian's chromium (`apt-get install chromium`; .ci/run installs it), or CHROMIUM_PATH; undefined when absent. */
function findChromium(): string | undefined {
  const given = process.env.CHROMIUM_PATH;
  if (given !== undefined && given !== "") return given;
  for (const name of ["chromium", "chromium-browser"]) {
    try {
      return execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim();
    } catch {
      // try the next name
    }
  }
  return undefined;
}

// As with SPIN (tests/model/spin.test.ts): skipped with a warning on a machine without chromium, required in CI.
const chromium = findChromium();
if (chromium === undefined) {
  if (process.env.CI) {
    test("chromium is installed (CI runs the browser test, never skips it)", () => {
      throw new Error("no chromium found: apt-get install -y chromium (or set CHROMIUM_PATH)");
    });
  } else {
    console.warn("tests/e2e/console.test.ts: no chromium found (apt-get install -y chromium); SKIPPING the console page test");
  }
}
const describeWithBrowser = chromium !== undefined ? describe : describe.skip;

describeWithBrowser("the console page", () => {
  let cluster: LocalCluster;
  let client: LogPlayerClient;
  let console_: RunningConsole;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    // A 3-replica Raft group, as an operator runs it: the page shows a leader and two followers.
    cluster = await LocalCluster.start({
      dataDir: tempDataDir("console"),
      shardCount: 3,
      logPlayers: 1,
      logStoreReplicas: 3,
      ports: "auto",
    });
    client = await cluster.connectClient({ timeoutMs: 10_000 });
    console_ = await startLocalConsole(cluster, 0);
    browser = await puppeteer.launch({
      executablePath: chromium as string, // defined: the describe is skipped otherwise
      headless: true,
      // Root in CI, no GPU, a small /dev/shm: chromium's sandbox and shared memory are off.
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    });
    page = await browser.newPage();
    await page.setViewport({ width: 1100, height: 980 });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await console_?.close();
    client?.close();
    await cluster?.stop();
  });

  const commitSome = async (count: number, tag: string): Promise<void> => {
    for (let i = 0; i < count; i += 1)
      await client.commit([mutation.put(`console/${tag}/${i}`, `v${i}`), mutation.put(`other/${tag}/${i}`, "x")]);
  };

  const shardUp = (shardId: number, up: boolean): Promise<unknown> =>
    page.waitForSelector(`#shards tr[data-shard="${shardId}"][data-up="${up}"]`, { timeout: PAGE_WAIT_MS });

  it("shows the cluster, a killed shard down and then up again after its restart", async () => {
    await page.goto(console_.url);
    await commitSome(50, "before");
    for (const shardId of [0, 1, 2]) await shardUp(shardId, true);
    await page.waitForFunction(`document.querySelectorAll('#replicas tr[data-healthy="true"]').length === 3`, {
      timeout: PAGE_WAIT_MS,
    });
    await page.waitForFunction(`document.querySelector("#leader")?.textContent?.startsWith("logstore") === true`, {
      timeout: PAGE_WAIT_MS,
    });

    cluster.kill("shard-1");
    await shardUp(1, false);
    // The LogPlayer's target for it is suspended (no stream) once its stream fails.
    await page.waitForSelector('#targets tr[data-target="1"][data-state="S"]', { timeout: PAGE_WAIT_MS });
    await shardUp(0, true);

    await cluster.restart("shard-1");
    await shardUp(1, true);
    await page.waitForSelector('#targets tr[data-target="1"][data-state="N"]', { timeout: PAGE_WAIT_MS });

    // Live histograms: parts delivered after the page opened show up in the delay histograms.
    await commitSome(100, "after");
    await page.waitForFunction(String.raw`/^[1-9]\d* parts$/.test(document.querySelector("#apply-total")?.textContent ?? "")`, {
      timeout: PAGE_WAIT_MS,
    });
    await page.waitForFunction(String.raw`/^[1-9]\d* parts$/.test(document.querySelector("#player-total")?.textContent ?? "")`, {
      timeout: PAGE_WAIT_MS,
    });
    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(fs.statSync(SCREENSHOT).size).toBeGreaterThan(10_000);
  }, 300_000);
});
