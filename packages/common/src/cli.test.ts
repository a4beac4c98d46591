import { Command } from "commander";
import { envOption, flagsOnlyArgv, parseFlags } from "./cli";

describe("flagsOnlyArgv", () => {
  test("drops a '--' right after the script, as `pnpm <script> -- --flag` passes it", () => {
    expect(flagsOnlyArgv(["node", "main.js", "--", "--rate", "5000"])).toEqual(["node", "main.js", "--rate", "5000"]);
  });

  test("leaves everything else as it is, including a later '--'", () => {
    expect(flagsOnlyArgv(["node", "main.js", "--rate", "5000"])).toEqual(["node", "main.js", "--rate", "5000"]);
    expect(flagsOnlyArgv(["node", "main.js", "--rate", "--", "x"])).toEqual(["node", "main.js", "--rate", "--", "x"]);
    expect(flagsOnlyArgv(["node", "main.js"])).toEqual(["node", "main.js"]);
    expect(flagsOnlyArgv(["node"])).toEqual(["node"]);
  });

  test("parseFlags reads the flags after a '--' and refuses a stray argument", () => {
    const program = (): Command =>
      new Command("t")
        .exitOverride()
        .configureOutput({ writeErr: () => {} })
        .addOption(envOption("--rate <n>", "rate", "LP_TEST_RATE_UNSET", "1000"));
    expect(parseFlags(program(), ["node", "main.js", "--", "--rate", "5000"]).opts()).toEqual({ rate: "5000" });
    expect(() => parseFlags(program(), ["node", "main.js", "stray"])).toThrow(/too many arguments/);
  });
});
