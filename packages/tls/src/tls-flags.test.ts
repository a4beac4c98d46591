import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { status } from "@grpc/grpc-js";
import { createRegistry, silentLogger } from "@logplayer/common";
import { ensureCertificates } from "./certificates";
import { TRUST_DOMAIN_DEFAULT } from "./identity";
import { parseIdentityList } from "./main";
import { REFUSAL_LOG_INTERVAL_MS, RefusalLog } from "./refusal-log";
import { type TlsFlags, transportSecurityFromFlags } from "./tls-flags";
import { certificateFileStem, isLoopbackHost } from "./transport-security";

const flags = (extra: Partial<TlsFlags>): TlsFlags => ({ tlsTrustDomain: TRUST_DOMAIN_DEFAULT, ...extra });

describe("transport security from flags", () => {
  let dir: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lp-tls-flags-"));
    const identities = [
      { role: "shard", name: "0" },
      { role: "client", name: "default" },
    ] as const;
    await ensureCertificates(dir, {
      trustDomain: TRUST_DOMAIN_DEFAULT,
      validityDays: 1,
      certificates: identities.map((identity) => ({
        fileStem: certificateFileStem(identity),
        identity,
        dnsNames: ["localhost"],
        ipAddresses: ["127.0.0.1"],
        validityDays: 1,
      })),
    });
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("loads <role>-<name> from --tls-dir, and from the three explicit files", () => {
    const fromDir = transportSecurityFromFlags(flags({ tlsDir: dir }), { role: "shard", name: "0", listenHosts: ["127.0.0.1"] });
    expect(fromDir).toMatchObject({ mode: "mtls", identity: { role: "shard", name: "0" } });
    const explicit = transportSecurityFromFlags(
      flags({ tlsCa: path.join(dir, "ca.crt"), tlsCert: path.join(dir, "shard-0.crt"), tlsKey: path.join(dir, "shard-0.key") }),
      { role: "shard", name: "0", listenHosts: ["0.0.0.0"] },
    );
    expect(explicit).toMatchObject({ mode: "mtls", identity: { role: "shard", name: "0" } });
  });

  it("refuses a certificate of another role or id, missing files, and half the explicit files", () => {
    const subject = { role: "shard", name: "1", listenHosts: ["127.0.0.1"] } as const;
    expect(() => transportSecurityFromFlags(flags({ tlsDir: dir }), subject)).toThrow(/shard-1\.crt not found/);
    const clientAsShard = {
      tlsCa: path.join(dir, "ca.crt"),
      tlsCert: path.join(dir, "client-default.crt"),
      tlsKey: path.join(dir, "client-default.key"),
    };
    expect(() => transportSecurityFromFlags(flags(clientAsShard), subject)).toThrow(/names client\/default; this process needs shard\/1/);
    expect(() => transportSecurityFromFlags(flags({ tlsCa: path.join(dir, "ca.crt") }), subject)).toThrow(/go together/);
  });

  it("--insecure (or LP_INSECURE=1) only on loopback, unless --insecure-allow-remote", () => {
    const subject = (host: string) => ({ role: "shard" as const, name: "0", listenHosts: [host] });
    expect(transportSecurityFromFlags(flags({ insecure: true }), subject("127.0.0.1"))).toEqual({ mode: "insecure" });
    expect(transportSecurityFromFlags(flags({ insecure: true }), subject("[::1]"))).toEqual({ mode: "insecure" });
    expect(() => transportSecurityFromFlags(flags({ insecure: true }), subject("0.0.0.0"))).toThrow(/--insecure-allow-remote/);
    expect(transportSecurityFromFlags(flags({ insecure: true, insecureAllowRemote: true }), subject("0.0.0.0"))).toEqual({
      mode: "insecure",
    });
    expect(() => transportSecurityFromFlags(flags({ insecure: true, tlsDir: dir }), subject("127.0.0.1"))).toThrow(/cannot be combined/);
    expect([isLoopbackHost("127.0.0.2"), isLoopbackHost("localhost"), isLoopbackHost("10.0.0.1"), isLoopbackHost("example.com")]).toEqual([
      true,
      true,
      false,
      false,
    ]);
  });
});

describe("RefusalLog", () => {
  it("counts every refusal by method and reason, logs a peer once per interval, and keeps unknown methods out of the labels", async () => {
    const registry = createRegistry("test");
    const logger = silentLogger();
    const warn = jest.spyOn(logger, "warn");
    let now = 0;
    const refusals = new RefusalLog("test", registry, logger, () => now);
    const refusal = (method: string, peer: string) => ({
      method,
      code: status.PERMISSION_DENIED as const,
      peer,
      identity: { role: "client" as const, name: peer },
      reason: "no",
    });
    refusals.record(refusal("/logplayer.v1.Shard/Deliver", "a"));
    refusals.record(refusal("/logplayer.v1.Shard/Deliver", "a"));
    refusals.record(refusal("/made.up/Method", "b"));
    now += REFUSAL_LOG_INTERVAL_MS;
    refusals.record(refusal("/logplayer.v1.Shard/Deliver", "a"));
    expect(warn).toHaveBeenCalledTimes(3);
    const text = await registry.getSingleMetricAsString("lp_test_auth_refusals_total");
    expect(text).toContain('lp_test_auth_refusals_total{method="/logplayer.v1.Shard/Deliver",reason="permission_denied",service="test"} 3');
    expect(text).toContain('method="other",reason="permission_denied"');
  });
});

describe("tls init --names", () => {
  it("parses role/name lists and refuses an unknown role or a bad name", () => {
    expect(parseIdentityList("shard/0, logplayer/main")).toEqual([
      { role: "shard", name: "0" },
      { role: "logplayer", name: "main" },
    ]);
    expect(() => parseIdentityList("root/0")).toThrow(/role/);
    expect(() => parseIdentityList("shard/a b")).toThrow(/identity name/);
  });
});
