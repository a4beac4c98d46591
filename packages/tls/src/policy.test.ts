import fs from "node:fs";
import path from "node:path";
import { CLUSTER_POLICY } from "./policy";

/** Every RPC our protos declare, as its full gRPC method path. */
function declaredMethods(): string[] {
  const protoDir = path.resolve(__dirname, "../../../proto/logplayer/v1");
  const methods: string[] = [];
  for (const file of fs.readdirSync(protoDir).filter((name) => name.endsWith(".proto"))) {
    const text = fs.readFileSync(path.join(protoDir, file), "utf8");
    for (const service of text.matchAll(/service\s+(\w+)\s*\{([^}]*)\}/g)) {
      for (const rpc of service[2]!.matchAll(/rpc\s+(\w+)\s*\(/g)) methods.push(`/logplayer.v1.${service[1]}/${rpc[1]}`);
    }
  }
  return methods;
}

describe("CLUSTER_POLICY", () => {
  test("names every RPC of our protos (a method it leaves out is refused to everyone)", () => {
    const methods = declaredMethods();
    expect(methods.length).toBeGreaterThan(10);
    expect(methods.filter((method) => !CLUSTER_POLICY.has(method))).toEqual([]);
  });

  test("lists no method the protos do not declare", () => {
    const declared = new Set(declaredMethods());
    const stale = [...CLUSTER_POLICY.keys()].filter((method) => method.startsWith("/logplayer.") && !declared.has(method));
    expect(stale).toEqual([]);
  });
});
