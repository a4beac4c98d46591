import fs from "node:fs";
import { isIP } from "node:net";
import path from "node:path";
import {
  type ChannelCredentials,
  credentials,
  type ServerCredentials,
  ServerCredentials as ServerCredentialsFactory,
  type ServerInterceptor,
} from "@grpc/grpc-js";
import { authorizationInterceptor, loadTlsFiles, mtlsChannelCredentials, mtlsServerCredentials, type TlsMaterial } from "./authorization";
import { CA_CERT_FILE, type TlsFiles } from "./certificates";
import { describeIdentity, identityFromCertificate, type PeerIdentity } from "./identity";
import { CLUSTER_POLICY } from "./policy";
import type { RefusalLog } from "./refusal-log";

/**
 * How a process talks on the network: mutual TLS with the cluster CA (the
 * default), or plain text when started with --insecure. Every gRPC server and
 * channel of a process is made from one of these, so a process cannot be half secure.
 */
export type TransportSecurity =
  | {
      readonly mode: "mtls";
      readonly material: TlsMaterial;
      readonly trustDomain: string;
      /** Who this process is, as its own certificate says. */
      readonly identity: PeerIdentity;
      readonly files: TlsFiles;
    }
  | { readonly mode: "insecure" };

export const INSECURE: TransportSecurity = { mode: "insecure" };

/** `<dir>/<role>-<name>.crt` and `.key`, next to `<dir>/ca.crt`: the layout `pnpm start` and `tls init` write. */
export function tlsFilesInDir(dir: string, identity: PeerIdentity): TlsFiles {
  const stem = certificateFileStem(identity);
  return { caCertFile: path.join(dir, CA_CERT_FILE), certFile: path.join(dir, `${stem}.crt`), keyFile: path.join(dir, `${stem}.key`) };
}

export function certificateFileStem(identity: PeerIdentity): string {
  return `${identity.role}-${identity.name}`;
}

/**
 * Loads a process's TLS material and checks that its certificate names the
 * role it will act as: a shard started with a client's certificate would
 * otherwise fail only later, at its peers, with a less useful message. With
 * `expectName`, the name must match too (a replica's id, a shard's id).
 */
export function loadTransportSecurity(
  files: TlsFiles,
  trustDomain: string,
  expected: { readonly role: PeerIdentity["role"]; readonly name?: string },
): TransportSecurity {
  for (const [file, what] of [
    [files.caCertFile, "CA certificate"],
    [files.certFile, "certificate"],
    [files.keyFile, "private key"],
  ] as const) {
    if (!fs.existsSync(file)) {
      throw new Error(
        `TLS ${what} ${file} not found: \`pnpm start\` makes the certificates under <data-dir>/tls, ` +
          "`node packages/tls/dist/main.js init --dir <dir> --names ...` makes them for a deployment; " +
          "--insecure runs without TLS (loopback only)",
      );
    }
  }
  const material = loadTlsFiles(files);
  const identity = identityFromCertificate(pemToDer(material.cert, files.certFile), trustDomain);
  const wanted =
    expected.name === undefined ? `a ${expected.role} identity` : describeIdentity({ role: expected.role, name: expected.name });
  if (identity === null || identity.role !== expected.role || (expected.name !== undefined && identity.name !== expected.name)) {
    const found = identity === null ? `no spiffe://${trustDomain}/<role>/<name> identity` : describeIdentity(identity);
    throw new Error(`TLS certificate ${files.certFile} names ${found}; this process needs ${wanted}`);
  }
  return { mode: "mtls", material, trustDomain, identity, files };
}

function pemToDer(pem: Buffer, file: string): Buffer {
  const match = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem.toString("utf8"));
  if (match === null) throw new Error(`TLS certificate ${file} holds no PEM certificate`);
  return Buffer.from(match[1]!.replace(/\s+/g, ""), "base64");
}

export function serverCredentialsFor(security: TransportSecurity): ServerCredentials {
  return security.mode === "mtls" ? mtlsServerCredentials(security.material) : ServerCredentialsFactory.createInsecure();
}

export function channelCredentialsFor(security: TransportSecurity): ChannelCredentials {
  return security.mode === "mtls" ? mtlsChannelCredentials(security.material) : credentials.createInsecure();
}

/**
 * The interceptors a server adds so that every call is checked against the
 * cluster policy before any handler sees it; none when insecure (then there
 * is no identity to check).
 */
export function serverInterceptorsFor(security: TransportSecurity, refusals: RefusalLog): { interceptors?: ServerInterceptor[] } {
  if (security.mode === "insecure") return {};
  return { interceptors: [authorizationInterceptor(security.trustDomain, CLUSTER_POLICY, (refusal) => refusals.record(refusal))] };
}

/** The authenticated caller of a server call, or null (no certificate, or insecure mode). */
export function callerIdentity(
  call: { getAuthContext(): { sslPeerCertificate?: { raw: Buffer } } | null },
  security: TransportSecurity,
): PeerIdentity | null {
  if (security.mode === "insecure") return null;
  const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
  return raw === undefined ? null : identityFromCertificate(raw, security.trustDomain);
}

/** Whether a listen host is loopback: the only place --insecure may listen without --insecure-allow-remote. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (bare === "localhost" || bare === "::1") return true;
  return isIP(bare) === 4 && bare.startsWith("127.");
}

/**
 * The key a caller's per-caller limits are counted under: its certificate's
 * identity with mTLS; with --insecure, where nobody is authenticated, its host.
 */
export function callerKey(
  call: { getPeer(): string; getAuthContext(): { sslPeerCertificate?: { raw: Buffer } } | null },
  security: TransportSecurity,
): string {
  const identity = callerIdentity(call, security);
  if (identity !== null) return describeIdentity(identity);
  // "ipv4:127.0.0.1:53012" -> "ipv4:127.0.0.1": every connection from one host counts as one caller.
  const peer = call.getPeer();
  const portColon = peer.lastIndexOf(":");
  return `unauthenticated ${portColon > 0 ? peer.slice(0, portColon) : peer}`;
}
