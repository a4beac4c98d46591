import { renderBreakdownSvg, renderCdfSvg, renderHtmlReport } from "./html-report";

describe("html report", () => {
  it("draws one CDF path and one legend entry per series", () => {
    const svg = renderCdfSvg([
      {
        name: "a",
        points: [
          [0, 0.5],
          [50, 1],
          [100, 20],
        ],
      },
      {
        name: "b <c>",
        points: [
          [0, 2],
          [100, 300],
        ],
      },
    ]);
    expect(svg.match(/<path /g)).toHaveLength(2);
    expect(svg).toContain("b &lt;c&gt;");
  });

  it("makes each stacked segment as wide as its share of the longest bar", () => {
    const svg = renderBreakdownSvg([
      {
        name: "one",
        segments: [
          { name: "x", ms: 1 },
          { name: "y", ms: 3 },
        ],
      },
      { name: "two", segments: [{ name: "x", ms: 2 }] },
    ]);
    // 530 px for the longest total (4 ms): 132.5 px per ms.
    const widths = [...svg.matchAll(/<rect x="[\d.]+" y="\d+" width="([\d.]+)" height="26"/g)].map((m) => Number(m[1]));
    expect(widths).toEqual([132.5, 397.5, 265]);
  });

  it("is one self-contained page: no script, no external reference", () => {
    const html = renderHtmlReport({ title: "t", notes: ["n & m"], cdfs: [], bars: [], text: "<table>" });
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)|<link/);
    expect(html).toContain("n &amp; m");
    expect(html).toContain("&lt;table&gt;");
  });
});
