// The millstream job console: polls /console/data with the session's bearer token and draws plain SVG.
// No framework, no CDN: this file is everything the page runs. Data is inserted as text, never as HTML.
"use strict";

const TOKEN_KEY = "millstream.token";
const SVG = "http://www.w3.org/2000/svg";
let timer = null;
let chartStep = null;
let lastDoc = null;
let splitsStep = null;

function token() { return sessionStorage.getItem(TOKEN_KEY); }

async function api(method, path) {
  const response = await fetch(path, { method, headers: { Authorization: "Bearer " + token() }, cache: "no-store" });
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  return { status: response.status, body };
}

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// -- formatting ------------------------------------------------------------------------------------------
function num(v, digits) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "string") return v === "+inf" ? "∞" : v;
  if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(2) + "M";
  return Number(v).toFixed(digits === undefined ? 0 : digits);
}
function secs(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "string") return v;
  if (v < 60) return v.toFixed(v < 10 ? 2 : 1) + " s";
  if (v < 3600) return (v / 60).toFixed(1) + " min";
  if (v < 86400) return (v / 3600).toFixed(1) + " h";
  return (v / 86400).toFixed(1) + " d";
}
function watermark(v) {
  if (v === null || v === undefined) return "–";
  if (v === "+inf") return "+∞ (done)";
  return new Date(v * 1000).toISOString().replace(".000Z", "Z");
}
function bytes(v) {
  if (v === null || v === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return v.toFixed(i ? 1 : 0) + " " + units[i];
}

// -- login -----------------------------------------------------------------------------------------------
function showLogin(message) {
  stopPolling();
  document.getElementById("login").hidden = false;
  document.getElementById("console").hidden = true;
  document.getElementById("session").hidden = true;
  document.getElementById("login-error").textContent = message || "";
  document.getElementById("token").focus();
}

async function login(event) {
  event.preventDefault();
  const input = document.getElementById("token");
  sessionStorage.setItem(TOKEN_KEY, input.value.trim());
  input.value = "";
  await refresh();
}

function logout() {
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin("Logged out.");
}

// -- polling ---------------------------------------------------------------------------------------------
function stopPolling() { if (timer !== null) { clearTimeout(timer); timer = null; } }

async function refresh() {
  stopPolling();
  if (!token()) { showLogin(""); return; }
  let answer;
  try {
    answer = await api("GET", "/console/data");
  } catch (e) {
    // the job's process has ended (or the network is gone): keep the last figures, say so
    document.getElementById("job-state").textContent = (lastDoc ? lastDoc.job.state : "?") + " (endpoint gone)";
    document.getElementById("job-state").dataset.state = lastDoc ? lastDoc.job.state : "";
    return;
  }
  if (answer.status === 401) { sessionStorage.removeItem(TOKEN_KEY); showLogin("That token was not accepted."); return; }
  if (answer.status !== 200) { showLogin("The job answered " + answer.status + "."); return; }
  lastDoc = answer.body;
  document.getElementById("login").hidden = true;
  document.getElementById("console").hidden = false;
  render(answer.body);
  if (chartStep !== null) await drawCharts(chartStep);
  if (splitsStep !== null) await drawSplits(splitsStep);
  timer = setTimeout(refresh, Math.max(0.2, answer.body.poll_interval_s) * 1000);
}

// -- rendering -------------------------------------------------------------------------------------------
function render(doc) {
  const job = doc.job;
  document.title = job.name + " — millstream";
  document.getElementById("job-name").textContent = job.name;
  const badge = document.getElementById("job-state");
  badge.textContent = job.state;
  badge.dataset.state = job.state;
  document.getElementById("job-meta").textContent = "job " + job.job_id + " · up " + secs(job.uptime_s);
  const session = document.getElementById("session");
  session.hidden = false;
  document.getElementById("role-text").textContent = "logged in as " + doc.viewer.role;
  document.getElementById("actions").hidden = !doc.viewer.can_act;
  const t = doc.totals;
  const totals = document.getElementById("totals");
  totals.replaceChildren();
  for (const [label, value, key] of [
    ["throughput (elements/s)", num(t.throughput_eps, 1), "throughput"],
    ["system lag", secs(t.system_lag_s), "system-lag"],
    ["output watermark", watermark(t.output_watermark), "output-watermark"],
    ["data watermark age", secs(t.data_watermark_age_s), "watermark-age"],
    ["checkpoints", num(t.checkpoints_total) + (t.checkpoint_in_progress ? " (one in progress)" : ""), "checkpoints"],
    ["state on disk", bytes(t.state_size_bytes), "state-size"],
  ]) {
    const box = el("div", { "data-total": key });
    box.append(el("dt", {}, label), el("dd", {}, value));
    totals.append(box);
  }
  drawGraph(doc);
  drawSteps(doc);
  const sourceRows = table("sources", ["step", "records read", "bytes read", "backlog", "progress", "splits"],
    doc.sources.map(s => [s.step, num(s.records_read), bytes(s.bytes_read), num(s.backlog),
      s.progress === undefined ? "–" : (s.progress * 100).toFixed(1) + " %", ""]));
  doc.sources.forEach((s, i) => {
    const cell = sourceRows.rows[i].lastChild;
    const button = cell.appendChild(el("button", { type: "button", "aria-label": "Backlog per split of " + s.step }, "Splits"));
    button.addEventListener("click", () => { splitsStep = s.step; drawSplits(s.step); });
  });
  table("checkpoints", ["id", "finished", "duration", "sources paused", "longest loop stall", "records written", "state size"],
    doc.checkpoints.map(c => [String(c.id), new Date(c.finished * 1000).toLocaleTimeString(), secs(c.duration_s),
      secs(c.sources_paused_s), secs(c.loop_stall_s), num(c.records_written), bytes(c.state_size_bytes)]));
  table("dead-counts", ["step", "dead letters", "dropped as late"],
    doc.steps.filter(s => (s.dead_letters || 0) > 0 || (s.dropped_late || 0) > 0)
      .map(s => [s.step, num(s.dead_letters), num(s.dropped_late)]));
  const latest = [];
  for (const [step, records] of Object.entries(doc.dead_letters)) {
    for (const r of records) latest.push([step, new Date(r.time * 1000).toLocaleTimeString(), r.reason, r.record]);
  }
  table("dead-latest", ["step", "time", "reason", "record"], latest, [2, 3]);
  const late = [];
  for (const [step, records] of Object.entries(doc.late_data || {})) {
    for (const r of records) late.push([step, new Date(r.time * 1000).toLocaleTimeString(), r.reason, r.window,
      watermark(r.watermark), watermark(r.timestamp), r.record]);
  }
  table("late-latest", ["step", "time", "reason", "window", "watermark", "event time", "record"], late, [2, 3, 6]);
}

// Backlog per split of one source: asked for when the user opens it (it may cost the source a look-up).
async function drawSplits(step) {
  document.getElementById("splits-step").textContent = step;
  const answer = await api("GET", "/console/source?step=" + encodeURIComponent(step));
  if (answer.status !== 200) {
    table("source-splits", ["split", "backlog"], [[answer.body ? answer.body.error : "HTTP " + answer.status, ""]], [0]);
    return;
  }
  const splits = answer.body.splits;
  const rows = splits === null ? [[answer.body.note || "unknown", "–"]]
    : splits.map(s => [s.split, num(s.backlog)]);
  table("source-splits", ["split", "backlog"], rows, [0]);
}

function table(id, header, rows, textColumns) {
  const t = document.getElementById(id);
  const caption = t.querySelector("caption");
  t.replaceChildren(caption);
  const head = el("tr");
  for (const h of header) head.append(el("th", { scope: "col" }, h));
  t.appendChild(el("thead")).append(head);
  const body = t.appendChild(el("tbody"));
  if (!rows.length) {
    const tr = body.appendChild(el("tr"));
    tr.append(el("td", { colspan: String(header.length), class: "text" }, "none"));
  }
  for (const row of rows) {
    const tr = body.appendChild(el("tr"));
    row.forEach((v, i) => tr.append(el("td", (textColumns || []).includes(i) ? { class: "text" } : {}, v)));
  }
  return body;
}

function drawSteps(doc) {
  const header = ["step", "history", "stage", "state", "in", "out", "in/s", "out/s", "input watermark", "output watermark",
    "watermark age", "late", "dead letters", "state in memory", "evicted"];
  const t = document.getElementById("steps");
  const caption = t.querySelector("caption");
  t.replaceChildren(caption);
  const head = el("tr");
  for (const h of header) head.append(el("th", { scope: "col" }, h));
  t.appendChild(el("thead")).append(head);
  const body = t.appendChild(el("tbody"));
  for (const s of doc.steps) {
    const tr = body.appendChild(el("tr", { class: s.state, "data-step": s.step }));
    const cells = [s.step, s.stage || "", s.state, num(s.elements_in), num(s.elements_out), num(s.in_per_s, 1),
      num(s.out_per_s, 1), watermark(s.input_watermark), watermark(s.output_watermark), secs(s.watermark_age_s),
      num(s.dropped_late), num(s.dead_letters), num(s.state_entries_in_memory), num(s.state_entries_evicted)];
    const keys = ["step", "stage", "state", "elements_in", "elements_out", "in_per_s", "out_per_s",
      "input_watermark", "output_watermark", "watermark_age_s", "dropped_late", "dead_letters",
      "state_entries_in_memory", "state_entries_evicted"];
    cells.forEach((v, i) => {
      const cell = el(i === 0 ? "th" : "td", { "data-key": keys[i], class: i === 2 ? "state" : (i < 2 ? "name" : "") }, v);
      if (i === 0) cell.setAttribute("scope", "row");
      tr.append(cell);
      if (i === 0) {
        const td = tr.appendChild(el("td"));
        const button = td.appendChild(el("button", { type: "button", "aria-label": "History of " + s.step }, "History"));
        button.addEventListener("click", () => { chartStep = s.step; drawCharts(s.step); });
      }
    });
  }
}

// Layered layout: a step's column is its longest distance from a source; rows in order of appearance.
function drawGraph(doc) {
  const depth = {};
  const incoming = {};
  for (const s of doc.steps) { depth[s.step] = 0; incoming[s.step] = []; }
  for (const e of doc.edges) incoming[e.to].push(e.from);
  for (let pass = 0; pass < doc.steps.length; pass++) {
    let changed = false;
    for (const e of doc.edges) {
      if (depth[e.to] < depth[e.from] + 1) { depth[e.to] = depth[e.from] + 1; changed = true; }
    }
    if (!changed) break;
  }
  const W = 190, H = 46, GX = 60, GY = 18;
  const rows = {};
  const pos = {};
  for (const s of doc.steps) {
    const d = depth[s.step];
    rows[d] = (rows[d] || 0) + 1;
    pos[s.step] = { x: 10 + d * (W + GX), y: 10 + (rows[d] - 1) * (H + GY) };
  }
  const width = 20 + (Math.max(0, ...Object.values(depth)) + 1) * (W + GX);
  const height = 20 + Math.max(1, ...Object.values(rows)) * (H + GY);
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `Pipeline graph: ${doc.steps.length} steps, ${doc.edges.length} edges` });
  for (const e of doc.edges) {
    const a = pos[e.from], b = pos[e.to];
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    const g = root.appendChild(svg("g", { "data-edge": e.from + "->" + e.to }));
    g.append(svg("path", { class: "edge" + (e.dead_letters ? " dead" : ""),
      d: `M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}` }));
    g.append(svg("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 3, "text-anchor": "middle",
      "data-elements": String(e.elements) }, num(e.elements)));
  }
  for (const s of doc.steps) {
    const p = pos[s.step];
    const g = root.appendChild(svg("g", { class: "node " + s.state, "data-step": s.step,
      transform: `translate(${p.x},${p.y})` }));
    g.append(svg("title", {}, `${s.step} (${s.kind}, stage ${s.stage}): ${s.state}`));
    g.append(svg("rect", { width: W, height: H, rx: 5 }));
    const name = s.step.length > 28 ? s.step.slice(0, 27) + "…" : s.step;
    g.append(svg("text", { x: 6, y: 16 }, name));
    g.append(svg("text", { x: 6, y: 34, "data-rates": "" }, `in ${num(s.in_per_s, 1)}/s · out ${num(s.out_per_s, 1)}/s`));
  }
  document.getElementById("graph").replaceChildren(root);
}

// -- charts ----------------------------------------------------------------------------------------------
async function drawCharts(step) {
  document.getElementById("chart-step").textContent = step;
  const answer = await api("GET", "/console/history?step=" + encodeURIComponent(step));
  if (answer.status !== 200) return;
  const h = answer.body;
  document.getElementById("history-interval").textContent = String(h.interval_s);
  document.getElementById("history-span").textContent = secs(h.interval_s * h.capacity);
  const cols = h.steps[step];
  const box = document.getElementById("charts");
  box.replaceChildren(
    chart("input watermark", h.times, cols.input_watermark, watermark),
    chart("output watermark", h.times, cols.output_watermark, watermark),
    chart("data watermark age", h.times, cols.watermark_age_s, secs),
    chart("system lag (job)", h.times, h.system_lag_s, secs));
}

function chart(title, times, values, fmt) {
  const W = 320, H = 90;
  const figure = el("figure", { class: "chart", "data-chart": title });
  figure.append(el("h3", {}, title));
  const points = [];
  times.forEach((t, i) => { const v = values[i]; if (typeof v === "number") points.push([t, v]); });
  const last = values.length ? values[values.length - 1] : null;  // may be "+inf": shown, not plotted
  const root = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `${title}: ${points.length} samples, latest ${fmt(last)}` });
  if (points.length) {
    const t0 = times[0], t1 = Math.max(times[times.length - 1], t0 + 1);
    let lo = Math.min(...points.map(p => p[1])), hi = Math.max(...points.map(p => p[1]));
    if (hi === lo) { hi += 1; lo -= 1; }
    const xy = points.map(([t, v]) => `${((t - t0) / (t1 - t0) * (W - 10) + 5).toFixed(1)},${(H - 5 - (v - lo) / (hi - lo) * (H - 20)).toFixed(1)}`);
    root.append(svg("polyline", { points: xy.join(" ") }));
  }
  root.append(svg("text", { x: 5, y: 12 }, "latest " + fmt(last)));
  figure.append(root);
  return figure;
}

// -- actions ---------------------------------------------------------------------------------------------
async function act(action) {
  const what = { drain: "Drain: stop reading, fire every open window, take a final checkpoint and exit?",
    stop: "Stop: take a checkpoint and exit with windows still open (a restart resumes)?",
    cancel: "Cancel: end now; output not yet committed is discarded?" }[action];
  if (!window.confirm(what)) return;
  const result = document.getElementById("action-result");
  const answer = await api("POST", "/" + action);
  result.textContent = answer.body ? (answer.body.message || answer.body.error || "") + " (" + answer.status + ")"
    : "HTTP " + answer.status;
  await refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("login-form").addEventListener("submit", login);
  document.getElementById("logout").addEventListener("click", logout);
  for (const b of document.querySelectorAll("button.action")) b.addEventListener("click", () => act(b.dataset.action));
  refresh();
});
