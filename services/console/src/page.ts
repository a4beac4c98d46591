/**
 * The console page: plain HTML and a little JavaScript, no framework. It
 * renders each state the server pushes on /events (server-sent events); the
 * browser's EventSource reconnects by itself when the console restarts.
 */
export const CONSOLE_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>LogPlayer console</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.2em; color: #1d2330; background: #f7f8fa; }
  h1 { font-size: 1.3em; margin: 0 0 .3em; }
  h2 { font-size: 1.05em; margin: 1.2em 0 .4em; }
  #summary span { margin-right: 1.5em; }
  table { border-collapse: collapse; background: #fff; min-width: 40em; }
  th, td { padding: .25em .7em; border-bottom: 1px solid #e3e6eb; text-align: left; font-variant-numeric: tabular-nums; }
  th { background: #eef1f5; font-weight: 600; }
  .ok { color: #137333; font-weight: 600; }
  .bad { color: #b3261e; font-weight: 600; }
  .muted { color: #6b7280; }
  .histograms { display: flex; gap: 2em; flex-wrap: wrap; }
  .histogram { background: #fff; padding: .6em .8em; border: 1px solid #e3e6eb; }
  .bars { display: flex; align-items: flex-end; height: 120px; gap: 2px; }
  .bar { width: 30px; background: #4c7bd9; min-height: 1px; }
  .labels { display: flex; gap: 2px; font-size: 10px; color: #6b7280; }
  .labels div { width: 30px; text-align: center; overflow: hidden; }
  #connection.bad { background: #fde7e7; padding: 0 .4em; }
</style>
</head>
<body>
<h1>LogPlayer console</h1>
<div id="summary">
  <span>leader: <b id="leader">?</b></span>
  <span>commit LSN: <b id="commit">?</b></span>
  <span>transactions/s: <b id="rate">?</b></span>
  <span>updated: <span id="updated" class="muted">never</span></span>
  <span id="connection" class="muted">connecting</span>
</div>
<h2>LogStore replicas</h2>
<table><thead><tr><th>replica</th><th>address</th><th>health</th><th>role</th><th>term</th><th>commit LSN</th><th>last LSN</th><th>lag (entries)</th></tr></thead>
<tbody id="replicas"></tbody></table>
<h2>Shards</h2>
<table><thead><tr><th>shard</th><th>address</th><th>health</th><th>applied LSN</th><th>lag (entries)</th><th>lag (s)</th><th>delivery</th><th>streams</th></tr></thead>
<tbody id="shards"></tbody></table>
<h2>LogPlayer targets</h2>
<table><thead><tr><th>LogPlayer</th><th>target</th><th>state</th><th>term</th><th>queued parts</th><th>window batches</th><th>lag (entries)</th><th>lag (s)</th></tr></thead>
<tbody id="targets"></tbody></table>
<h2>Delays (parts, last <span id="window">?</span> s)</h2>
<div class="histograms">
  <div class="histogram"><b>LogPlayer delay</b> <span id="player-total" class="muted"></span><div class="bars" id="player-bars"></div><div class="labels" id="player-labels"></div></div>
  <div class="histogram"><b>Apply delay</b> <span id="apply-total" class="muted"></span><div class="bars" id="apply-bars"></div><div class="labels" id="apply-labels"></div></div>
</div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const text = (v) => (v === null || v === undefined ? "–" : String(v));
function cell(value, cls) {
  const td = document.createElement("td");
  td.textContent = text(value);
  if (cls) td.className = cls;
  return td;
}
function fill(body, rows, toCells, attrs) {
  const tbody = $(body);
  tbody.replaceChildren(...rows.map((row) => {
    const tr = document.createElement("tr");
    for (const [k, v] of Object.entries(attrs ? attrs(row) : {})) tr.setAttribute(k, String(v));
    tr.append(...toCells(row));
    return tr;
  }));
}
function bound(b) {
  if (b === null) return "inf";
  return b < 0.001 ? Math.round(b * 1e6) + "µ" : b < 1 ? Math.round(b * 1000) + "m" : b + "s";
}
function histogram(prefix, h) {
  const max = Math.max(1, ...h.counts);
  $(prefix + "-total").textContent = h.total + " parts";
  $(prefix + "-bars").replaceChildren(...h.counts.map((c, i) => {
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.height = Math.round((c / max) * 118) + "px";
    bar.title = "≤ " + bound(h.bounds[i]) + ": " + c;
    return bar;
  }));
  $(prefix + "-labels").replaceChildren(...h.bounds.map((b) => {
    const label = document.createElement("div");
    label.textContent = bound(b);
    return label;
  }));
}
function render(v) {
  $("leader").textContent = text(v.leader);
  $("commit").textContent = text(v.commitLsn);
  $("rate").textContent = v.txnRate === null ? "–" : v.txnRate.toFixed(1);
  $("updated").textContent = new Date(v.atMs).toLocaleTimeString();
  $("window").textContent = v.delayWindowSeconds;
  fill("replicas", v.replicas, (r) => [cell(r.name), cell(r.address), cell(r.healthy ? "healthy" : "down", r.healthy ? "ok" : "bad"),
    cell(r.role), cell(r.term), cell(r.commitLsn), cell(r.lastLsn), cell(r.lag)], (r) => ({ "data-replica": r.name, "data-healthy": r.healthy }));
  fill("shards", v.shards, (s) => [cell(s.shardId), cell(s.address),
    cell(s.up ? (s.diskFull ? "disk full" : "up") : "down", s.up && !s.diskFull ? "ok" : "bad"), cell(s.appliedLsn), cell(s.lagEntries),
    cell(s.lagSeconds === null ? null : s.lagSeconds.toFixed(1)), cell(s.delivery), cell(s.deliveryStreams)],
    (s) => ({ "data-shard": s.shardId, "data-up": s.up }));
  fill("targets", v.targets, (t) => [cell(t.player), cell(t.target), cell(t.state, t.state === "N" ? "ok" : "bad"), cell(t.term),
    cell(t.queuedParts), cell(t.windowBatches), cell(t.lagEntries), cell(t.lagSeconds.toFixed(1))],
    (t) => ({ "data-target": t.target, "data-state": t.state }));
  histogram("player", v.playerDelay);
  histogram("apply", v.applyDelay);
}
const events = new EventSource("/events");
events.onopen = () => { $("connection").textContent = "live"; $("connection").className = "ok"; };
events.onerror = () => { $("connection").textContent = "reconnecting"; $("connection").className = "bad"; };
events.onmessage = (e) => { const v = JSON.parse(e.data); if (v) render(v); };
</script>
</body>
</html>
`;
