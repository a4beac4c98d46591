import { TrimPointGatherer } from "./trim-rule";

describe("TrimPointGatherer", () => {
  it("has no trim point until every shard has reported: a silent shard pins it", () => {
    const gatherer = new TrimPointGatherer(3);
    expect(gatherer.trimPoint).toBeUndefined();
    gatherer.update(0, 50n);
    gatherer.update(2, 70n);
    expect(gatherer.trimPoint).toBeUndefined();
    gatherer.update(1, 40n);
    expect(gatherer.trimPoint).toBe(40n);
  });

  it("is the lowest restorable LSN, and follows a shard that went back", () => {
    const gatherer = new TrimPointGatherer(2);
    gatherer.update(0, 90n);
    gatherer.update(1, 80n);
    expect(gatherer.trimPoint).toBe(80n);
    gatherer.update(0, 30n);
    expect(gatherer.trimPoint).toBe(30n);
  });

  it("ignores a shard id outside the shard map", () => {
    const gatherer = new TrimPointGatherer(1);
    gatherer.update(1, 5n);
    gatherer.update(-1, 5n);
    expect(gatherer.trimPoint).toBeUndefined();
    gatherer.update(0, 9n);
    expect(gatherer.trimPoint).toBe(9n);
  });
});
