import { X509Certificate } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  type Client,
  credentials,
  makeGenericClientConstructor,
  Metadata,
  Server,
  ServerCredentials,
  type ServiceDefinition,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import {
  authorizationInterceptor,
  authorize,
  loadTlsFiles,
  mtlsChannelCredentials,
  mtlsServerCredentials,
  type Refusal,
} from "./authorization";
import { createCertificateAuthority, ensureCertificates, issueCertificate, type TlsFiles } from "./certificates";
import { identityFromCertificate, identityUri, parseIdentityUri, type PeerIdentity } from "./identity";
import { CLUSTER_POLICY } from "./policy";

const DOMAIN = "test.logplayer";

/** A certificate request for a process on loopback, its files named `<role>-<name>`. */
function loopbackCertificate(role: PeerIdentity["role"], name: string, validityDays: number) {
  return { fileStem: `${role}-${name}`, identity: { role, name }, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validityDays };
}

describe("identity URIs", () => {
  it("round-trips every role", () => {
    for (const role of ["logstore-replica", "logplayer", "shard", "client", "reader", "admin"] as const) {
      const identity: PeerIdentity = { role, name: "n-1" };
      expect(parseIdentityUri(identityUri(DOMAIN, identity), DOMAIN)).toEqual(identity);
    }
  });

  it("names nobody for another trust domain, an unknown role, a bad name or extra path parts", () => {
    expect(parseIdentityUri("spiffe://other.domain/client/a", DOMAIN)).toBeNull();
    expect(parseIdentityUri(`spiffe://${DOMAIN}/root/a`, DOMAIN)).toBeNull();
    expect(parseIdentityUri(`spiffe://${DOMAIN}/client/a b`, DOMAIN)).toBeNull();
    expect(parseIdentityUri(`spiffe://${DOMAIN}/client/a/b`, DOMAIN)).toBeNull();
    expect(parseIdentityUri(`spiffe://${DOMAIN}/client/`, DOMAIN)).toBeNull();
    expect(() => identityUri("Bad Domain", { role: "client", name: "a" })).toThrow(/trust domain/);
  });
});

describe("certificates", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lp-tls-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const request = (role: PeerIdentity["role"], name: string) => loopbackCertificate(role, name, 30);

  it("makes a CA and certificates signed by it, naming one identity each, keys readable by the owner only", async () => {
    const files = await ensureCertificates(dir, {
      trustDomain: DOMAIN,
      validityDays: 30,
      certificates: [request("shard", "0"), request("client", "cli")],
    });
    const shard = files.get("shard-0")!;
    const ca = new X509Certificate(fs.readFileSync(shard.caCertFile));
    const leaf = new X509Certificate(fs.readFileSync(shard.certFile));
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(ca.ca).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.subjectAltName).toContain(`URI:spiffe://${DOMAIN}/shard/0`);
    expect(leaf.subjectAltName).toContain("IP Address:127.0.0.1");
    expect(identityFromCertificate(leaf.raw, DOMAIN)).toEqual({ role: "shard", name: "0" });
    expect(identityFromCertificate(leaf.raw, "other.domain")).toBeNull();
    expect(fs.statSync(shard.keyFile).mode & 0o777).toBe(0o600);
  });

  it("keeps existing files on the next start (identities do not change across restarts)", async () => {
    const options = { trustDomain: DOMAIN, validityDays: 30, certificates: [request("logplayer", "p1")] };
    const first = (await ensureCertificates(dir, options)).get("logplayer-p1")!;
    const before = [first.caCertFile, first.certFile, first.keyFile].map((f) => fs.readFileSync(f, "utf8"));
    const withMore = { ...options, certificates: [...options.certificates, request("admin", "ops")] };
    const second = (await ensureCertificates(dir, withMore)).get("logplayer-p1")!;
    expect([second.caCertFile, second.certFile, second.keyFile].map((f) => fs.readFileSync(f, "utf8"))).toEqual(before);
  });

  it("a certificate with two identities names nobody", async () => {
    const ca = await createCertificateAuthority(DOMAIN, 1);
    const one = await issueCertificate(ca, DOMAIN, {
      identity: { role: "client", name: "a" },
      dnsNames: [],
      ipAddresses: [],
      validityDays: 1,
    });
    expect(identityFromCertificate(new X509Certificate(one.certPem).raw, DOMAIN)).toEqual({ role: "client", name: "a" });
    expect(authorize("/logplayer.v1.Shard/Deliver", Buffer.from("not a certificate"), DOMAIN, CLUSTER_POLICY)).toMatchObject({
      allowed: false,
      code: status.UNAUTHENTICATED,
    });
  });
});

// A real mTLS server on loopback with the interceptor in front of one unary method per policy row we try.
describe("mTLS and roles over a real connection", () => {
  let dir: string;
  let server: Server;
  let port: number;
  let files: Map<string, TlsFiles>;
  const handled: string[] = [];
  const refusals: Refusal[] = [];

  const methods = ["/logplayer.v1.LogStore/Append", "/logplayer.v1.Shard/Deliver", "/logplayer.v1.Nothing/Here"];
  const definition: ServiceDefinition = Object.fromEntries(
    methods.map((methodPath) => [
      methodPath,
      {
        path: methodPath,
        requestStream: false,
        responseStream: false,
        requestSerialize: (value: Buffer) => value,
        requestDeserialize: (bytes: Buffer) => bytes,
        responseSerialize: (value: Buffer) => value,
        responseDeserialize: (bytes: Buffer) => bytes,
      },
    ]),
  );

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lp-tls-grpc-"));
    const certificate = (role: PeerIdentity["role"], name: string) => loopbackCertificate(role, name, 1);
    files = await ensureCertificates(dir, {
      trustDomain: DOMAIN,
      validityDays: 1,
      certificates: [certificate("shard", "0"), certificate("client", "writer"), certificate("logplayer", "p1")],
    });
    // A second, unrelated CA: its certificates must not get in.
    const strangers = await ensureCertificates(path.join(dir, "strangers"), {
      trustDomain: DOMAIN,
      validityDays: 1,
      certificates: [certificate("admin", "mallory")],
    });
    files.set("stranger", strangers.get("admin-mallory")!);
    server = new Server({ interceptors: [authorizationInterceptor(DOMAIN, CLUSTER_POLICY, (refusal) => refusals.push(refusal))] });
    const handlers = Object.fromEntries(
      methods.map((methodPath) => [
        methodPath,
        (_call: unknown, callback: (error: null, value: Buffer) => void) => {
          handled.push(methodPath);
          callback(null, Buffer.from("ok"));
        },
      ]),
    );
    server.addService(definition, handlers);
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", mtlsServerCredentials(loadTlsFiles(files.get("shard-0")!)), (err, bound) =>
        err ? reject(err) : resolve(bound),
      ),
    );
  });

  afterAll(() => {
    server.forceShutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const Generic = makeGenericClientConstructor(definition, "Test");
  function call(client: Client, methodPath: string): Promise<ServiceError | null> {
    return new Promise((resolve) => {
      client.makeUnaryRequest(
        methodPath,
        (value: Buffer) => value,
        (bytes: Buffer) => bytes,
        Buffer.from("x"),
        new Metadata(),
        { deadline: Date.now() + 5_000 },
        (err) => resolve(err),
      );
    });
  }
  const clientAs = (stem: string): Client => new Generic(`127.0.0.1:${port}`, mtlsChannelCredentials(loadTlsFiles(files.get(stem)!)));

  beforeEach(() => {
    handled.length = 0;
    refusals.length = 0;
  });

  it("serves a caller whose role the policy allows", async () => {
    const client = clientAs("client-writer");
    expect(await call(client, "/logplayer.v1.LogStore/Append")).toBeNull();
    expect(handled).toEqual(["/logplayer.v1.LogStore/Append"]);
    client.close();
  });

  it("refuses a valid certificate of the wrong role with PERMISSION_DENIED before any handler runs", async () => {
    const client = clientAs("client-writer");
    const err = await call(client, "/logplayer.v1.Shard/Deliver");
    expect(err?.code).toBe(status.PERMISSION_DENIED);
    expect(err?.details).toContain("client/writer may not call /logplayer.v1.Shard/Deliver");
    expect(handled).toEqual([]);
    expect(refusals).toMatchObject([{ code: status.PERMISSION_DENIED, identity: { role: "client", name: "writer" } }]);
    client.close();
  });

  it("refuses a method no policy row names, whoever calls", async () => {
    const client = clientAs("logplayer-p1");
    expect((await call(client, "/logplayer.v1.Nothing/Here"))?.code).toBe(status.PERMISSION_DENIED);
    expect(await call(client, "/logplayer.v1.Shard/Deliver")).toBeNull();
    expect(handled).toEqual(["/logplayer.v1.Shard/Deliver"]);
    client.close();
  });

  it("refuses plain text, a TLS client without a certificate, and a certificate from another CA: no handler runs", async () => {
    const plain = new Generic(`127.0.0.1:${port}`, credentials.createInsecure());
    const anonymous = new Generic(`127.0.0.1:${port}`, credentials.createSsl(loadTlsFiles(files.get("shard-0")!).caCert));
    const stranger = clientAs("stranger");
    for (const client of [plain, anonymous, stranger]) {
      const err = await call(client, "/logplayer.v1.LogStore/Append");
      expect(err?.code).toBe(status.UNAVAILABLE);
      client.close();
    }
    expect(handled).toEqual([]);
  });

  it("a server without the CA's client check still cannot be reached by a client that does not trust its certificate", async () => {
    const other = new Server();
    other.addService(definition, {
      "/logplayer.v1.LogStore/Append": (_c: unknown, cb: (e: null, v: Buffer) => void) => cb(null, Buffer.from("ok")),
    });
    const strangerFiles = loadTlsFiles(files.get("stranger")!);
    const otherPort = await new Promise<number>((resolve, reject) =>
      other.bindAsync(
        "127.0.0.1:0",
        ServerCredentials.createSsl(null, [{ cert_chain: strangerFiles.cert, private_key: strangerFiles.key }], false),
        (err, bound) => (err ? reject(err) : resolve(bound)),
      ),
    );
    const client = new Generic(`127.0.0.1:${otherPort}`, mtlsChannelCredentials(loadTlsFiles(files.get("client-writer")!)));
    expect((await call(client, "/logplayer.v1.LogStore/Append"))?.code).toBe(status.UNAVAILABLE);
    client.close();
    other.forceShutdown();
  });
});
