import { X509Certificate } from "node:crypto";

/**
 * What a certificate allows its holder to do. One role per certificate,
 * named in a URI subject-alternative-name (SPIFFE style):
 * `spiffe://<trust domain>/<role>/<name>`.
 *
 * - logstore-replica: steps Raft with its peers (the name must be the sender's replica id);
 * - logplayer: reads the log and delivers to shards;
 * - shard: serves reads; dials nobody;
 * - client: appends and reads; reader: reads only;
 * - admin: everything a client may do, plus the admin RPCs.
 */
export const ROLES = ["logstore-replica", "logplayer", "shard", "client", "reader", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** Who is calling, as its certificate says. `name` is the replica id, shard id, player id or a client's name. */
export interface PeerIdentity {
  readonly role: Role;
  readonly name: string;
}

/** The default trust domain; a cluster may pick its own (its certificates must then all say it). */
export const TRUST_DOMAIN_DEFAULT = "logplayer.local";

// Trust domains are DNS-like (SPIFFE); names are ids: letters, digits, '.', '_', '-', at most 128 chars.
const TRUST_DOMAIN_PATTERN = /^[a-z0-9]([a-z0-9.-]{0,253}[a-z0-9])?$/;
const NAME_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

export function validateTrustDomain(trustDomain: string): void {
  if (!TRUST_DOMAIN_PATTERN.test(trustDomain)) {
    throw new Error(`trust domain "${trustDomain}" must be lower-case letters, digits, '.' and '-' (like a DNS name)`);
  }
}

export function validateIdentityName(name: string): void {
  if (!NAME_PATTERN.test(name)) throw new Error(`identity name "${name}" must be 1-128 of A-Z a-z 0-9 . _ -`);
}

export function identityUri(trustDomain: string, identity: PeerIdentity): string {
  validateTrustDomain(trustDomain);
  validateIdentityName(identity.name);
  return `spiffe://${trustDomain}/${identity.role}/${identity.name}`;
}

/** The identity a URI names in `trustDomain`, or null for anything else (another domain, an unknown role, extra path parts). */
export function parseIdentityUri(uri: string, trustDomain: string): PeerIdentity | null {
  const prefix = `spiffe://${trustDomain}/`;
  if (!uri.startsWith(prefix)) return null;
  const parts = uri.slice(prefix.length).split("/");
  if (parts.length !== 2) return null;
  const [role, name] = parts as [string, string];
  if (!isRole(role) || !NAME_PATTERN.test(name)) return null;
  return { role, name };
}

/**
 * The one identity a DER certificate names in `trustDomain`. A certificate
 * naming none, or more than one, names nobody: null (the caller refuses).
 */
export function identityFromCertificate(der: Buffer, trustDomain: string): PeerIdentity | null {
  let altNames: string | undefined;
  try {
    altNames = new X509Certificate(der).subjectAltName;
  } catch {
    return null;
  }
  if (altNames === undefined) return null;
  const identities = splitAltNames(altNames)
    .filter((entry) => entry.startsWith("URI:"))
    .map((entry) => parseIdentityUri(entry.slice("URI:".length), trustDomain))
    .filter((identity): identity is PeerIdentity => identity !== null);
  return identities.length === 1 ? identities[0]! : null;
}

/** Node prints alt names as `URI:a, DNS:b`; a name with ", " inside is quoted, and then it is not one of ours anyway. */
function splitAltNames(altNames: string): string[] {
  return altNames.split(", ").map((entry) => entry.trim());
}

export function describeIdentity(identity: PeerIdentity): string {
  return `${identity.role}/${identity.name}`;
}
