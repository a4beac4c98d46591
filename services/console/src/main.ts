#!/usr/bin/env node
// `console`: the console page for any cluster (pnpm start runs it in-process for the local one).
import { Command } from "commander";
import { envOption, listenHost, parseFlags, runMain } from "@logplayer/common";
import { type TlsFlags, transportSecurityFromFlags, withTlsOptions } from "@logplayer/tls";
import { CONSOLE_DEFAULTS, type ConsoleTargets, startConsole } from "./console-server";

interface ConsoleFlags extends TlsFlags {
  readonly listen: string;
  readonly logstore: string;
  readonly shards: string;
  readonly shardMetrics?: string;
  readonly playerMetrics?: string;
}

function list(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

async function main(): Promise<void> {
  const program = withTlsOptions(
    new Command("console")
      .description("Serve a live web page of a cluster (replicas, shards, LogPlayer targets, rates, delays) until Ctrl-C.")
      .addOption(
        envOption(
          "--listen <host:port>",
          "where the page is served (plain HTTP, no authentication)",
          "LP_CONSOLE_LISTEN",
          "127.0.0.1:9900",
        ),
      )
      .addOption(
        envOption("--logstore <addresses>", "every LogStore replica's gRPC address, comma-separated", "LP_LOGSTORE").makeOptionMandatory(),
      )
      .addOption(
        envOption(
          "--shards <addresses>",
          "every shard's gRPC address in shard-id order, comma-separated",
          "LP_SHARDS",
        ).makeOptionMandatory(),
      )
      .addOption(
        envOption("--shard-metrics <urls>", "each shard's /metrics URL in shard-id order (the delay histograms)", "LP_SHARD_METRICS"),
      )
      .addOption(envOption("--player-metrics <urls>", "each LogPlayer's /metrics URL (target states, lag in seconds)", "LP_PLAYER_METRICS"))
      .showHelpAfterError(),
  );
  parseFlags(program, process.argv);
  const flags = program.opts<ConsoleFlags>();
  const host = listenHost(flags.listen);
  const port = Number(flags.listen.slice(flags.listen.lastIndexOf(":") + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--listen: no port in "${flags.listen}"`);
  // Status is open to admin certificates (lpctl's): the console reads what `lpctl status` reads.
  const security = transportSecurityFromFlags(flags, { role: "admin", defaultFileName: "lpctl", listenHosts: [] });
  const shardMetrics = list(flags.shardMetrics);
  const targets: ConsoleTargets = {
    logstores: list(flags.logstore).map((address, i) => ({ name: `logstore-${i + 1}`, address })),
    shards: list(flags.shards).map((address, shardId) => ({
      shardId,
      name: `shard-${shardId}`,
      address,
      metricsUrl: shardMetrics[shardId],
    })),
    players: list(flags.playerMetrics).map((metricsUrl, i) => ({ name: `logplayer-${i}`, metricsUrl })),
  };
  const running = await startConsole({ ...CONSOLE_DEFAULTS, host, port, targets: () => targets, security });
  process.stdout.write(`console: ${running.url}\n`);
  const stop = (): void => void running.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

runMain("console", main);
