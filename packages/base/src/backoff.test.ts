import { Backoff } from "./backoff";

describe("Backoff", () => {
  const config = { initialDelayMs: 10, maxDelayMs: 40, multiplier: 2 };

  it("draws each delay from the injected randomness under a capped, doubling ceiling", () => {
    const backoff = new Backoff(config, () => 0.5);
    expect([1, 2, 3, 4].map(() => backoff.nextDelayMs())).toEqual([5, 10, 20, 20]);
    backoff.reset();
    expect(backoff.nextDelayMs()).toBe(5);
  });

  it("replays the same delays from the same random sequence", () => {
    const sequence = (): (() => number) => {
      let n = 0;
      return () => (n++ * 0.37) % 1;
    };
    const first = new Backoff(config, sequence());
    const second = new Backoff(config, sequence());
    for (let i = 0; i < 10; i++) expect(first.nextDelayMs()).toBe(second.nextDelayMs());
  });
});
