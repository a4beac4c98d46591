import { readFileSync } from "node:fs";
import {
  type ChannelCredentials,
  credentials,
  ResponderBuilder,
  type ServerCredentials,
  ServerCredentials as ServerCredentialsFactory,
  ServerInterceptingCall,
  type ServerInterceptor,
  ServerListenerBuilder,
  status,
} from "@grpc/grpc-js";
import type { TlsFiles } from "./certificates";
import { describeIdentity, identityFromCertificate, type PeerIdentity } from "./identity";
import type { MethodPolicy } from "./policy";

export interface TlsMaterial {
  readonly caCert: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

export function loadTlsFiles(files: TlsFiles): TlsMaterial {
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err: unknown) {
      throw new Error(`cannot read the ${what} ${file}: ${(err as Error).message}`, { cause: err });
    }
  };
  return {
    caCert: read(files.caCertFile, "CA certificate"),
    cert: read(files.certFile, "certificate"),
    key: read(files.keyFile, "private key"),
  };
}

/** A server that requires a client certificate signed by the cluster CA (mTLS). */
export function mtlsServerCredentials(material: TlsMaterial): ServerCredentials {
  return ServerCredentialsFactory.createSsl(material.caCert, [{ cert_chain: material.cert, private_key: material.key }], true);
}

/** A channel that presents this process's certificate and trusts only the cluster CA. */
export function mtlsChannelCredentials(material: TlsMaterial): ChannelCredentials {
  return credentials.createSsl(material.caCert, material.key, material.cert);
}

/** Why a call was refused, for the caller's metric and rate-limited log. */
export interface Refusal {
  readonly method: string;
  readonly code: status.UNAUTHENTICATED | status.PERMISSION_DENIED;
  /** The peer's address as gRPC reports it. */
  readonly peer: string;
  readonly identity: PeerIdentity | null;
  readonly reason: string;
}

export type AuthorizationVerdict =
  | { readonly allowed: true; readonly identity: PeerIdentity }
  | ({ readonly allowed: false } & Omit<Refusal, "peer">);

/** Pure: the verdict for a caller whose certificate (DER) is `peerCertificate` calling `method`. */
export function authorize(
  method: string,
  peerCertificate: Buffer | undefined,
  trustDomain: string,
  policy: MethodPolicy,
): AuthorizationVerdict {
  if (peerCertificate === undefined || peerCertificate.length === 0) {
    return { allowed: false, method, code: status.UNAUTHENTICATED, identity: null, reason: "no client certificate (mTLS is required)" };
  }
  const identity = identityFromCertificate(peerCertificate, trustDomain);
  if (identity === null) {
    const reason = `the client certificate names no single spiffe://${trustDomain}/<role>/<name> identity`;
    return { allowed: false, method, code: status.UNAUTHENTICATED, identity: null, reason };
  }
  const roles = policy.get(method);
  if (roles === undefined || !roles.includes(identity.role)) {
    const allowedText = roles === undefined ? "nobody" : roles.join(", ");
    const reason = `${describeIdentity(identity)} may not call ${method} (allowed: ${allowedText})`;
    return { allowed: false, method, code: status.PERMISSION_DENIED, identity, reason };
  }
  return { allowed: true, identity };
}

/**
 * A server interceptor that checks every call against `policy` before the
 * handler sees anything; a refused call ends with UNAUTHENTICATED or
 * PERMISSION_DENIED and reaches no handler.
 */
export function authorizationInterceptor(
  trustDomain: string,
  policy: MethodPolicy,
  onRefused: (refusal: Refusal) => void,
): ServerInterceptor {
  return (method, call) => {
    const listener = new ServerListenerBuilder()
      .withOnReceiveMetadata((metadata, next) => {
        const certificate = call.getAuthContext().sslPeerCertificate;
        const verdict = authorize(method.path, certificate?.raw, trustDomain, policy);
        if (verdict.allowed) {
          next(metadata);
          return;
        }
        onRefused({ method: verdict.method, code: verdict.code, peer: call.getPeer(), identity: verdict.identity, reason: verdict.reason });
        call.sendStatus({ code: verdict.code, details: verdict.reason });
      })
      .build();
    const responder = new ResponderBuilder().withStart((next) => next(listener)).build();
    return new ServerInterceptingCall(call, responder);
  };
}
