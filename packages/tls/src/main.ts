#!/usr/bin/env node
import { envOption, flagsOnlyArgv, runMain } from "@logplayer/common";
import { Command, InvalidArgumentError } from "commander";
import { ensureCertificates } from "./certificates";
import { isRole, type PeerIdentity, TRUST_DOMAIN_DEFAULT, validateIdentityName } from "./identity";
import { certificateFileStem } from "./transport-security";

const VALIDITY_DAYS_DEFAULT = 825;

/** "logstore-replica/1,shard/0" -> identities; a bad role or name is refused by name. */
export function parseIdentityList(value: string): PeerIdentity[] {
  return value
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "")
    .map((entry) => {
      const [role, name, ...rest] = entry.split("/");
      if (role === undefined || name === undefined || rest.length > 0 || !isRole(role)) {
        throw new InvalidArgumentError(`expected <role>/<name> with a role of the cluster, got "${entry}"`);
      }
      validateIdentityName(name);
      return { role, name };
    });
}

interface InitFlags {
  dir: string;
  names: PeerIdentity[];
  hosts: string;
  trustDomain: string;
  validityDays: string;
}

/**
 * `init`: makes a cluster CA (on first use) and one certificate per --names
 * entry in --dir, keeping any that exist; docker-compose runs it once into
 * a volume the services mount.
 */
async function init(flags: InitFlags): Promise<void> {
  const hosts = flags.hosts
    .split(",")
    .map((h) => h.trim())
    .filter((h) => h !== "");
  const ipAddresses = hosts.filter((h) => /^[\d.]+$/.test(h) || h.includes(":"));
  const dnsNames = hosts.filter((h) => !ipAddresses.includes(h));
  const validityDays = Number(flags.validityDays);
  const files = await ensureCertificates(flags.dir, {
    trustDomain: flags.trustDomain,
    validityDays,
    certificates: flags.names.map((identity) => ({
      fileStem: certificateFileStem(identity),
      identity,
      dnsNames,
      ipAddresses,
      validityDays,
    })),
  });
  for (const [stem, file] of files) process.stdout.write(`${stem}: ${file.certFile}\n`);
}

function buildCommand(): Command {
  const program = new Command("tls").description("The cluster's certificates: a local CA and one certificate per process.");
  program
    .command("init")
    .description("make the CA (if missing) and the certificates named by --names (those missing) in --dir")
    .addOption(envOption("--dir <dir>", "where ca.crt, ca.key and <role>-<name>.crt/.key go", "LP_TLS_DIR").makeOptionMandatory())
    .addOption(
      envOption("--names <list>", "certificates to make: <role>/<name>,... (e.g. shard/0,logplayer/main)", "LP_TLS_NAMES")
        .argParser(parseIdentityList)
        .makeOptionMandatory(),
    )
    .addOption(
      envOption(
        "--hosts <list>",
        "host names and IPs the servers are dialled by (in every certificate)",
        "LP_TLS_HOSTS",
        "localhost,127.0.0.1,::1",
      ),
    )
    .addOption(envOption("--trust-domain <domain>", "trust domain of the spiffe:// names", "LP_TLS_TRUST_DOMAIN", TRUST_DOMAIN_DEFAULT))
    .addOption(envOption("--validity-days <n>", "validity of new certificates", "LP_TLS_VALIDITY_DAYS", String(VALIDITY_DAYS_DEFAULT)))
    .action(async (flags: InitFlags) => init(flags));
  return program;
}

if (require.main === module) {
  runMain("tls", async () => {
    await buildCommand().parseAsync(flagsOnlyArgv(process.argv));
  });
}
