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
