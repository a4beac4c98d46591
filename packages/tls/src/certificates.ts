import "reflect-metadata"; // @peculiar/x509's dependency injection needs the Reflect polyfill, once per process.
import { randomBytes, webcrypto } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import * as x509 from "@peculiar/x509";
import { identityUri, type PeerIdentity, validateTrustDomain } from "./identity";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** ECDSA P-256: fast to make (a CA and a dozen certificates in well under a second) and accepted by every TLS stack. */
const KEY_ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY_MS = 86_400_000;
/** Backdated so that a peer whose clock is a little behind accepts a certificate made just now. */
const NOT_BEFORE_SKEW_MS = 5 * 60_000;

export interface PemPair {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface CertificateRequest {
  readonly identity: PeerIdentity;
  /** Host names the holder serves on (checked by clients against the address they dialled). */
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly validityDays: number;
}

export async function createCertificateAuthority(trustDomain: string, validityDays: number, now = new Date()): Promise<PemPair> {
  validateTrustDomain(trustDomain);
  const keys = await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"]);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=LogPlayer cluster CA (${trustDomain})`,
    ...validity(now, validityDays),
    keys,
    signingAlgorithm: KEY_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return { certPem: certificate.toString("pem"), keyPem: await privateKeyPem(keys.privateKey) };
}

/** A certificate for one process, signed by the CA, usable as both TLS server and client (mTLS). */
export async function issueCertificate(ca: PemPair, trustDomain: string, request: CertificateRequest, now = new Date()): Promise<PemPair> {
  const caCertificate = new x509.X509Certificate(ca.certPem);
  const caKey = await importPrivateKey(ca.keyPem);
  const keys = await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"]);
  const altNames: x509.JsonGeneralName[] = [
    { type: "url", value: identityUri(trustDomain, request.identity) },
    ...request.dnsNames.map((value): x509.JsonGeneralName => ({ type: "dns", value })),
    ...request.ipAddresses.map((value): x509.JsonGeneralName => ({ type: "ip", value })),
  ];
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${request.identity.role}/${request.identity.name}`,
    issuer: caCertificate.subject,
    ...validity(now, request.validityDays),
    signingKey: caKey,
    publicKey: keys.publicKey,
    signingAlgorithm: KEY_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(altNames),
    ],
  });
  return { certPem: certificate.toString("pem"), keyPem: await privateKeyPem(keys.privateKey) };
}

/** Where a process's TLS material lives: the CA certificate it trusts, its own certificate and key. */
export interface TlsFiles {
  readonly caCertFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export const CA_CERT_FILE = "ca.crt";
export const CA_KEY_FILE = "ca.key";

export interface EnsureCertificatesOptions {
  readonly trustDomain: string;
  readonly validityDays: number;
  /** One entry per certificate; `fileStem` names `<stem>.crt` / `<stem>.key`. */
  readonly certificates: readonly (CertificateRequest & { readonly fileStem: string })[];
}

/**
 * Makes what is missing in `dir`: the CA on first use, then each requested
 * certificate that has no file yet. Existing files are kept as they are, so
 * a restart does not change anyone's identity. Keys are written 0600.
 */
export async function ensureCertificates(dir: string, options: EnsureCertificatesOptions): Promise<Map<string, TlsFiles>> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caCertFile = path.join(dir, CA_CERT_FILE);
  const caKeyFile = path.join(dir, CA_KEY_FILE);
  let ca: PemPair;
  if (fs.existsSync(caCertFile) && fs.existsSync(caKeyFile)) {
    ca = { certPem: fs.readFileSync(caCertFile, "utf8"), keyPem: fs.readFileSync(caKeyFile, "utf8") };
  } else {
    ca = await createCertificateAuthority(options.trustDomain, options.validityDays);
    writeKeyPair(caCertFile, caKeyFile, ca);
  }
  const files = new Map<string, TlsFiles>();
  for (const request of options.certificates) {
    const certFile = path.join(dir, `${request.fileStem}.crt`);
    const keyFile = path.join(dir, `${request.fileStem}.key`);
    if (!fs.existsSync(certFile) || !fs.existsSync(keyFile)) {
      writeKeyPair(certFile, keyFile, await issueCertificate(ca, options.trustDomain, request));
    }
    files.set(request.fileStem, { caCertFile, certFile, keyFile });
  }
  return files;
}

function writeKeyPair(certFile: string, keyFile: string, pair: PemPair): void {
  // Key first, then the certificate: a certificate on disk always has its key beside it.
  fs.writeFileSync(keyFile, pair.keyPem, { mode: 0o600 });
  fs.writeFileSync(certFile, pair.certPem, { mode: 0o644 });
}

function validity(now: Date, validityDays: number): { notBefore: Date; notAfter: Date } {
  if (!Number.isInteger(validityDays) || validityDays < 1)
    throw new Error(`validity must be a positive number of days, got ${validityDays}`);
  return { notBefore: new Date(now.getTime() - NOT_BEFORE_SKEW_MS), notAfter: new Date(now.getTime() + validityDays * DAY_MS) };
}

/** 16 random bytes, high bit clear (serial numbers are positive integers). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString("hex");
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
}

async function importPrivateKey(pem: string): Promise<webcrypto.CryptoKey> {
  const der = x509.PemConverter.decodeFirst(pem);
  return webcrypto.subtle.importKey("pkcs8", der, KEY_ALGORITHM, false, ["sign"]);
}
