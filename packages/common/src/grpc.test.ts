import { listenHost, portOf, withPort } from "./grpc";

describe("listenHost", () => {
  test("the host of host:port, for IPv4, names and bracketed IPv6", () => {
    expect(listenHost("127.0.0.1:7100")).toBe("127.0.0.1");
    expect(listenHost("0.0.0.0:0")).toBe("0.0.0.0");
    expect(listenHost("logstore:7100")).toBe("logstore");
    expect(listenHost("[::1]:7300")).toBe("::1");
    expect(listenHost("[::]:7300")).toBe("::");
  });

  test("an address without a host before the port is refused", () => {
    expect(() => listenHost("7100")).toThrow(/not host:port/);
    expect(() => listenHost(":7100")).toThrow(/not host:port/);
  });
});

describe("withPort", () => {
  test("replaces the port and keeps the host as written, brackets included", () => {
    expect(withPort("127.0.0.1:0", 7100)).toBe("127.0.0.1:7100");
    expect(withPort("[::1]:0", 7100)).toBe("[::1]:7100");
    expect(() => withPort("7100", 1)).toThrow(/not host:port/);
  });
});

describe("portOf", () => {
  test("reads the port after the last colon, whatever the host", () => {
    expect(portOf("127.0.0.1:7100")).toBe(7100);
    expect(portOf("[::1]:7300")).toBe(7300);
    expect(portOf("logstore-1:0")).toBe(0);
    expect(() => portOf("7100")).toThrow(/not host:port/);
    expect(() => portOf("host:99999")).toThrow(/no port/);
    expect(() => portOf("host:x")).toThrow(/no port/);
  });
});
