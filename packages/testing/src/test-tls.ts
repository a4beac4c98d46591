import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { ChannelCredentials } from "@grpc/grpc-js";
import {
  certificateFileStem,
  channelCredentialsFor,
  ensureCertificates,
  loadTransportSecurity,
  type PeerIdentity,
  TRUST_DOMAIN_DEFAULT,
  tlsFilesInDir,
  type TransportSecurity,
} from "@logplayer/tls";

/** Short-lived: a test's certificates never outlive the test run by much. */
const TEST_CERTIFICATE_VALIDITY_DAYS = 2;

/**
 * Every identity a process test may use: replicas 1..5, shards 0..7, the
 * LogPlayer's, and one client, reader and admin named "test". Made once per
 * test file (ECDSA P-256: well under a second for all of them).
 */
export const TEST_IDENTITIES: readonly PeerIdentity[] = [
  ...[1, 2, 3, 4, 5].map((id): PeerIdentity => ({ role: "logstore-replica", name: String(id) })),
  ...[0, 1, 2, 3, 4, 5, 6, 7].map((id): PeerIdentity => ({ role: "shard", name: String(id) })),
  { role: "logplayer", name: "main" },
  { role: "client", name: "test" },
  { role: "reader", name: "test" },
  { role: "admin", name: "test" },
];

/** A test's cluster CA and certificates in a temp dir, in the layout the services read with --tls-dir. */
export interface TestTls {
  readonly dir: string;
  /** `["--tls-dir", dir]`: what a spawned service needs to find its certificate. */
  readonly serviceFlags: readonly string[];
  security(identity: PeerIdentity): TransportSecurity;
  /** Channel credentials presenting `identity`'s certificate (default client/test). */
  channelCredentials(identity?: PeerIdentity): ChannelCredentials;
  /** Removes the directory. */
  remove(): void;
}

export async function createTestTls(extra: readonly PeerIdentity[] = []): Promise<TestTls> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lp-test-tls-"));
  await ensureCertificates(dir, {
    trustDomain: TRUST_DOMAIN_DEFAULT,
    validityDays: TEST_CERTIFICATE_VALIDITY_DAYS,
    certificates: [...TEST_IDENTITIES, ...extra].map((identity) => ({
      fileStem: certificateFileStem(identity),
      identity,
      dnsNames: ["localhost"],
      ipAddresses: ["127.0.0.1", "::1"],
      validityDays: TEST_CERTIFICATE_VALIDITY_DAYS,
    })),
  });
  const security = (identity: PeerIdentity): TransportSecurity =>
    loadTransportSecurity(tlsFilesInDir(dir, identity), TRUST_DOMAIN_DEFAULT, identity);
  return {
    dir,
    serviceFlags: ["--tls-dir", dir],
    security,
    channelCredentials: (identity = { role: "client", name: "test" }) => channelCredentialsFor(security(identity)),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
