import { waitFor } from "./wait-for";

test("returns once the condition holds, checking again after each pause", async () => {
  let checks = 0;
  await waitFor("the third check", () => ++checks === 3, { intervalMs: 1 });
  expect(checks).toBe(3);
});

test("accepts an asynchronous check", async () => {
  let checks = 0;
  await waitFor("an async check", async () => Promise.resolve(++checks >= 2), { intervalMs: 1 });
  expect(checks).toBe(2);
});

test("throws with the description once the timeout has passed", async () => {
  let checks = 0;
  const waiting = waitFor(
    "a condition that never holds",
    () => {
      checks += 1;
      return false;
    },
    { timeoutMs: 30, intervalMs: 5 },
  );
  await expect(waiting).rejects.toThrow("timed out after 30 ms waiting for a condition that never holds");
  expect(checks).toBeGreaterThan(1);
});

test("refuses a timeout or interval that is not positive", async () => {
  await expect(waitFor("x", () => true, { timeoutMs: 0 })).rejects.toThrow(RangeError);
  await expect(waitFor("x", () => true, { intervalMs: -1 })).rejects.toThrow(RangeError);
});
