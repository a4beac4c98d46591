// The client README promises a complete example. It is type-checked here
// against the built client, as a file of this package (which depends on
// @logplayer/client like a user's would), so that an API change that breaks
// it fails the suite instead of the first user.
import fs from "node:fs";
import path from "node:path";
import ts from "typescript";

const repoRoot = path.join(__dirname, "..", "..");
const readmePath = path.join(repoRoot, "packages", "client", "README.md");

/** The ```ts block under the "## Example" heading. */
function exampleSource(markdown: string): string {
  const section = markdown.split(/^## /m).find((s) => s.startsWith("Example"));
  const match = section === undefined ? null : /```ts\n([\s\S]*?)```/.exec(section);
  if (match === null) throw new Error(`no \`\`\`ts block under "## Example" in ${readmePath}`);
  return match[1]!;
}

/** Type errors of `source` compiled as `fileName` (a file that does not exist on disk) with the repo's compiler options. */
function typeErrors(source: string, fileName: string): string[] {
  const configPath = path.join(repoRoot, "tsconfig.base.json");
  const config = ts.readConfigFile(configPath, (p) => ts.sys.readFile(p));
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, repoRoot);
  options.noEmit = true;
  options.types = ["node"];
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.readFile = (p) => (p === fileName ? source : readFile(p));
  host.fileExists = (p) => p === fileName || fileExists(p);
  host.getSourceFile = (p, languageVersion, onError, shouldCreate) =>
    p === fileName ? ts.createSourceFile(p, source, languageVersion, true) : getSourceFile(p, languageVersion, onError, shouldCreate);
  const program = ts.createProgram([fileName], options, host);
  return ts
    .getPreEmitDiagnostics(program)
    .map((d) => `${d.file ? path.basename(d.file.fileName) : ""}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
}

describe("packages/client/README.md", () => {
  const source = exampleSource(fs.readFileSync(readmePath, "utf8"));
  const fileName = path.join(__dirname, "readme-example.ts");

  test("the example is a whole program: it imports the client, connects, commits and reads", () => {
    expect(source).toMatch(/from "@logplayer\/client"/);
    expect(source).toMatch(/LogPlayerClient\.connect\(/);
    expect(source).toMatch(/client\.commit\(/);
    expect(source).toMatch(/minLsn: lsn/);
  });

  test("the example type-checks against the client as built", () => {
    expect(typeErrors(source, fileName)).toEqual([]);
  }, 60_000);

  test("the check finds a broken example (it is not vacuous)", () => {
    const broken = source.replace("client.commit(", "client.commitTransaction(");
    expect(broken).not.toBe(source);
    expect(typeErrors(broken, fileName).join("\n")).toMatch(/commitTransaction/);
  }, 60_000);
});
