import { envOption, type Logger } from "@logplayer/common";
import { type Command, Option } from "commander";
import { TRUST_DOMAIN_DEFAULT, type PeerIdentity } from "./identity";
import { INSECURE, isLoopbackHost, loadTransportSecurity, tlsFilesInDir, type TransportSecurity } from "./transport-security";

/** Where every service, lpctl and the client look for certificates by default: `pnpm start`'s data root is ./data. */
export const TLS_DIR_DEFAULT = "./data/tls";

/** The TLS flags every service shares (commander `opts()` names). */
export interface TlsFlags {
  readonly tlsDir?: string;
  readonly tlsCa?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly tlsTrustDomain: string;
  readonly insecure?: boolean;
  readonly insecureAllowRemote?: boolean;
}

/** --tls-dir, --tls-ca/--tls-cert/--tls-key, --tls-trust-domain, --insecure, --insecure-allow-remote. */
export function tlsOptions(): Option[] {
  return [
    envOption(
      "--tls-dir <dir>",
      `directory holding ca.crt and this process's <role>-<name>.crt/.key (default: ${TLS_DIR_DEFAULT})`,
      "LP_TLS_DIR",
    ),
    envOption("--tls-ca <file>", "the cluster CA certificate (PEM); with --tls-cert and --tls-key instead of --tls-dir", "LP_TLS_CA"),
    envOption("--tls-cert <file>", "this process's certificate (PEM), signed by the cluster CA", "LP_TLS_CERT"),
    envOption("--tls-key <file>", "this process's private key (PEM)", "LP_TLS_KEY"),
    envOption(
      "--tls-trust-domain <domain>",
      "trust domain the certificates' spiffe:// names use",
      "LP_TLS_TRUST_DOMAIN",
      TRUST_DOMAIN_DEFAULT,
    ),
    new Option("--insecure", "plain-text gRPC with no authentication (also LP_INSECURE=1); refused on a non-loopback address"),
    new Option("--insecure-allow-remote", "allow --insecure on a non-loopback listen address (a trusted private network only)"),
  ];
}

/** `command` with tlsOptions() added. */
export function withTlsOptions(command: Command): Command {
  for (const option of tlsOptions()) command.addOption(option);
  return command;
}

/** Whether --insecure or LP_INSECURE=1 asked for plain text. */
export function insecureRequested(flags: Pick<TlsFlags, "insecure">, env: NodeJS.ProcessEnv = process.env): boolean {
  return flags.insecure === true || env["LP_INSECURE"] === "1";
}

export interface SecuritySubject {
  /** The role and name this process's certificate must name; `name` undefined accepts any name of the role. */
  readonly role: PeerIdentity["role"];
  readonly name?: string;
  /** The default file name's `<name>` when `name` is undefined. */
  readonly defaultFileName?: string;
  /** Hosts this process listens on: --insecure is refused on any that is not loopback, unless allowed. */
  readonly listenHosts: readonly string[];
}

/**
 * The process's transport security from its flags: mTLS from --tls-ca/cert/key
 * when all three are given, else from --tls-dir (default ./data/tls); plain
 * text only with --insecure, and then only on loopback unless --insecure-allow-remote.
 */
export function transportSecurityFromFlags(flags: TlsFlags, subject: SecuritySubject): TransportSecurity {
  const explicit = [flags.tlsCa, flags.tlsCert, flags.tlsKey].filter((file) => file !== undefined).length;
  if (insecureRequested(flags)) {
    if (explicit > 0 || flags.tlsDir !== undefined)
      throw new Error("--insecure cannot be combined with --tls-dir or --tls-ca/--tls-cert/--tls-key");
    const remote = subject.listenHosts.filter((host) => !isLoopbackHost(host));
    if (remote.length > 0 && flags.insecureAllowRemote !== true) {
      throw new Error(
        `--insecure on the non-loopback address ${remote.join(", ")} would let anyone on the network call every RPC; ` +
          "add --insecure-allow-remote only on a trusted private network, or run with TLS",
      );
    }
    return INSECURE;
  }
  if (explicit > 0 && explicit < 3) throw new Error("--tls-ca, --tls-cert and --tls-key go together: give all three, or --tls-dir");
  if (explicit === 3 && flags.tlsDir !== undefined) throw new Error("give either --tls-dir or --tls-ca/--tls-cert/--tls-key, not both");
  const files =
    explicit === 3
      ? { caCertFile: flags.tlsCa!, certFile: flags.tlsCert!, keyFile: flags.tlsKey! }
      : tlsFilesInDir(flags.tlsDir ?? TLS_DIR_DEFAULT, { role: subject.role, name: subject.name ?? subject.defaultFileName ?? "default" });
  return loadTransportSecurity(files, flags.tlsTrustDomain, subject.name === undefined ? { role: subject.role } : subject);
}

/** Logs how the process talks: a warning when it runs without TLS, so nobody runs insecure by accident. */
export function logTransportSecurity(logger: Logger, security: TransportSecurity): void {
  if (security.mode === "insecure") {
    logger.warn("running INSECURE (--insecure / LP_INSECURE=1): plain-text gRPC, no authentication, every caller may call every RPC");
    return;
  }
  logger.info(
    {
      identity: `${security.identity.role}/${security.identity.name}`,
      certFile: security.files.certFile,
      trustDomain: security.trustDomain,
    },
    "mTLS on: callers need a certificate from the cluster CA; every RPC is checked against its role",
  );
}
