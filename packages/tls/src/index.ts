export {
  CA_CERT_FILE,
  CA_KEY_FILE,
  createCertificateAuthority,
  ensureCertificates,
  issueCertificate,
} from "./certificates";
export type { CertificateRequest, EnsureCertificatesOptions, PemPair, TlsFiles } from "./certificates";
export {
  describeIdentity,
  identityFromCertificate,
  identityUri,
  isRole,
  parseIdentityUri,
  ROLES,
  TRUST_DOMAIN_DEFAULT,
  validateIdentityName,
  validateTrustDomain,
} from "./identity";
export type { PeerIdentity, Role } from "./identity";
export { CLUSTER_POLICY } from "./policy";
export type { MethodPolicy } from "./policy";
export { authorizationInterceptor, authorize, loadTlsFiles, mtlsChannelCredentials, mtlsServerCredentials } from "./authorization";
export type { AuthorizationVerdict, Refusal, TlsMaterial } from "./authorization";
export {
  callerIdentity,
  callerKey,
  certificateFileStem,
  channelCredentialsFor,
  INSECURE,
  isLoopbackHost,
  loadTransportSecurity,
  serverCredentialsFor,
  serverInterceptorsFor,
  tlsFilesInDir,
} from "./transport-security";
export type { TransportSecurity } from "./transport-security";
export { REFUSAL_LOG_INTERVAL_MS, RefusalLog } from "./refusal-log";
export type { RefusalReason } from "./refusal-log";
export {
  insecureRequested,
  logTransportSecurity,
  TLS_DIR_DEFAULT,
  tlsOptions,
  transportSecurityFromFlags,
  withTlsOptions,
} from "./tls-flags";
export type { SecuritySubject, TlsFlags } from "./tls-flags";
