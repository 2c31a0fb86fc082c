// `millstream console`: lists the local jobs, polling /jobs with the session's bearer token.
"use strict";

const TOKEN_KEY = "millstream.console.token";

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}
function num(v, d) { return v === null || v === undefined ? "–" : Number(v).toFixed(d || 0); }
function secs(v) {
  if (v === null || v === undefined) return "–";
  if (v < 60) return v.toFixed(v < 10 ? 2 : 1) + " s";
  if (v < 3600) return (v / 60).toFixed(1) + " min";
  if (v < 86400) return (v / 3600).toFixed(1) + " h";
  return (v / 86400).toFixed(1) + " d";
}

function showLogin(message) {
  document.getElementById("login").hidden = false;
  document.getElementById("list").hidden = true;
  document.getElementById("login-error").textContent = message || "";
}

async function refresh() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) { showLogin(""); return; }
  const response = await fetch("/jobs", { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
  if (response.status === 401) { sessionStorage.removeItem(TOKEN_KEY); showLogin("That token was not accepted."); return; }
  const doc = await response.json();
  document.getElementById("login").hidden = true;
  document.getElementById("list").hidden = false;
  document.getElementById("jobs-dir").textContent = doc.jobs_dir;
  const t = document.getElementById("jobs");
  const caption = t.querySelector("caption");
  t.replaceChildren(caption);
  const head = el("tr");
  for (const h of ["job", "id", "state", "uptime", "throughput (elements/s)", "system lag", "data watermark age"]) {
    head.append(el("th", { scope: "col" }, h));
  }
  t.appendChild(el("thead")).append(head);
  const body = t.appendChild(el("tbody"));
  if (!doc.jobs.length) body.appendChild(el("tr")).append(el("td", { colspan: "7", class: "text" }, "no running jobs"));
  for (const j of doc.jobs) {
    const tr = body.appendChild(el("tr", { "data-job": j.job_id }));
    const name = tr.appendChild(el("th", { scope: "row" }));
    name.append(el("a", { href: j.url }, j.name));
    for (const v of [j.job_id, j.state, secs(j.uptime_s), num(j.throughput_eps, 1), secs(j.system_lag_s),
      secs(j.data_watermark_age_s)]) tr.append(el("td", {}, v));
  }
  setTimeout(refresh, Math.max(0.2, doc.poll_interval_s) * 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("token");
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    input.value = "";
    await refresh();
  });
  refresh();
});
