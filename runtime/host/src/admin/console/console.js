// The operations page: reads the host's JSON API every two seconds and draws it.
"use strict";

const HISTORY = 60; // samples of throughput kept per route (2 minutes)
const throughput = new Map(); // route -> [{t, messages}]
let openLetter = null;

function duration(seconds) {
  if (seconds < 1) return (seconds * 1000).toFixed(0) + " ms";
  if (seconds < 120) return seconds.toFixed(1) + " s";
  if (seconds < 7200) return (seconds / 60).toFixed(1) + " min";
  return (seconds / 3600).toFixed(1) + " h";
}

function sparkline(samples) {
  const w = 220, h = 28;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", w); svg.setAttribute("height", h);
  const rates = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = (samples[i].t - samples[i - 1].t) / 1000;
    rates.push(dt > 0 ? Math.max(0, samples[i].messages - samples[i - 1].messages) / dt : 0);
  }
  const max = Math.max(1, ...rates);
  const points = rates.map((r, i) => (i * w / Math.max(1, HISTORY - 1)).toFixed(1) + "," + (h - 2 - r / max * (h - 4)).toFixed(1));
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points.join(" "));
  line.setAttribute("fill", "none"); line.setAttribute("stroke", "#3a6ea5"); line.setAttribute("stroke-width", "1.5");
  svg.append(line);
  const label = document.createElementNS(ns, "text");
  label.setAttribute("x", w - 2); label.setAttribute("y", 11); label.setAttribute("text-anchor", "end");
  label.textContent = rates.length ? rates[rates.length - 1].toFixed(1) + "/s" : "";
  svg.append(label);
  return svg;
}

// Horizontal bars: one row per site, several series side by side.
function bars(container, rows, series, format) {
  const ns = "http://www.w3.org/2000/svg";
  const rowHeight = 18 * series.length + 8, labelWidth = 90, width = 460;
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", width); svg.setAttribute("height", Math.max(24, rows.length * rowHeight));
  const max = Math.max(1e-9, ...rows.flatMap(r => series.map(s => r[s.key])));
  rows.forEach((row, i) => {
    const y = i * rowHeight;
    const name = document.createElementNS(ns, "text");
    name.setAttribute("x", 0); name.setAttribute("y", y + 14); name.textContent = row.site;
    svg.append(name);
    series.forEach((s, j) => {
      const value = row[s.key];
      const bar = document.createElementNS(ns, "rect");
      bar.setAttribute("x", labelWidth); bar.setAttribute("y", y + j * 18 + 2);
      bar.setAttribute("height", 14); bar.setAttribute("width", Math.max(1, value / max * (width - labelWidth - 110)));
      bar.setAttribute("fill", s.color);
      bar.setAttribute("data-site", row.site); bar.setAttribute("data-series", s.key);
      svg.append(bar);
      const text = document.createElementNS(ns, "text");
      text.setAttribute("x", labelWidth + Math.max(1, value / max * (width - labelWidth - 110)) + 4);
      text.setAttribute("y", y + j * 18 + 13);
      text.textContent = s.label + " " + format(value);
      svg.append(text);
    });
  });
  container.replaceChildren(rows.length ? svg : el("p", { class: "muted" }, "no postings yet"));
}

function drawRoutes(status, now) {
  const rows = status.routes.map(route => {
    const f = route.figures;
    const samples = throughput.get(route.name) || [];
    samples.push({ t: now, messages: f.messages });
    while (samples.length > HISTORY) samples.shift();
    throughput.set(route.name, samples);
    const serving = el("td", {}, ...route.serving.map(s => el("span", { class: "pill" }, s.role + (s.percent ? " " + s.percent + "%" : "") + " " + s.version)));
    return el("tr", { "data-route": route.name },
      el("td", {}, route.name),
      serving,
      num(f.messages_last_minute),
      num(f.dead_letters_last_minute, f.dead_letters_last_minute ? "bad" : ""),
      num(f.messages),
      num(f.events),
      num(f.dead_letters, f.dead_letters ? "bad" : ""),
      num(f.late_events, f.late_events ? "warn" : ""),
      num(f.retries),
      num(f.pending, f.pending ? "warn" : ""),
      el("td", {}, sparkline(samples)));
  });
  fill("routes", rows, "no routes");
}

function drawSites(status) {
  const sites = Object.entries(status.sites).map(([site, f]) => ({
    site,
    mean: f.posting_delay_mean_seconds,
    max: f.posting_delay_max_seconds,
    failures: f.failures,
    late: f.late_events,
  }));
  bars(document.getElementById("delay-chart"), sites,
    [{ key: "mean", label: "mean", color: "#3a6ea5" }, { key: "max", label: "max", color: "#9bb7d6" }], duration);
  bars(document.getElementById("exception-chart"), sites,
    [{ key: "failures", label: "dead letters", color: "#b3261e" }, { key: "late", label: "late", color: "#d69a3c" }], v => String(v));
  const partners = Object.entries(status.partners).map(([partner, f]) =>
    el("tr", { "data-partner": partner }, el("td", {}, partner),
      el("td", {}, Object.entries(f.failures).map(([reason, n]) => reason + ": " + n).join(", "))));
  fill("partners", partners, "no failures");
}

function drawVersions(status, plugins) {
  const rows = status.routes.map(route => {
    const b = route.binding;
    const active = route.serving.find(s => s.role === "active");
    const candidate = route.serving.find(s => s.role !== "active");
    return el("tr", { "data-route": route.name },
      el("td", {}, route.name),
      el("td", {}, active ? active.version : ""),
      el("td", {}, candidate ? candidate.role + " " + candidate.version : "–"),
      el("td", {}, b && b.history.length ? b.history.join(" → ") : (b ? "–" : "configured plugin, never switched")),
      el("td", {}, b ? b.updated_at : ""));
  });
  fill("versions", rows, "no routes");
  const versionRows = plugins.map(p => el("tr", {},
    el("td", {}, p.id), el("td", {}, p.wit), el("td", {}, p.deployed_at), el("td", {}, p.routes.join(", ") || "–")));
  fill("plugins", versionRows, "no versions deployed to the registry");
}

// The audit trail grouped by route (changes to plugins or the projection under their area),
// newest first within each, and the proposals waiting for approval.
function drawChanges(entries, proposals) {
  const scope = e => e.route || "(" + e.area + ")";
  // Newest first by the instant, not the text (`12:00:00Z` and `12:00:00.5Z`, other offsets).
  const instant = e => { const t = Date.parse(e.at); return Number.isNaN(t) ? -Infinity : t; };
  const rows = entries.slice()
    .sort((a, b) => scope(a).localeCompare(scope(b)) || instant(b) - instant(a) || b.at.localeCompare(a.at))
    .map(e => el("tr", { "data-route": scope(e), "data-action": e.action },
      el("td", {}, scope(e)), el("td", {}, e.at), el("td", {}, e.who + " (" + e.via + ")"),
      el("td", {}, e.action), el("td", {}, e.what)));
  fill("changes", rows, "no changes recorded");
  const waiting = proposals.map(p => el("tr", { "data-proposal": p.id },
    el("td", {}, p.id), el("td", {}, p.route),
    el("td", {}, p.change.change + (p.change.version ? " " + p.change.version : "")),
    el("td", {}, p.proposed_by), el("td", {}, p.expires_at)));
  fill("proposals", waiting, "no changes waiting for approval");
}

async function showLetter(sequence) {
  openLetter = sequence;
  const box = document.getElementById("letter");
  try {
    const letter = await api("/api/v1/dead-letters/" + sequence);
    const payload = letter.payload_text !== null ? letter.payload_text : "(binary, base64) " + letter.payload_base64;
    box.replaceChildren(
      el("h2", {}, "Dead letter " + letter.sequence + " — " + letter.route),
      el("p", {}, el("b", {}, letter.error_kind + ": "), letter.error),
      el("p", { class: "muted" }, letter.raw_subject + " · RAW sequence " + letter.raw_sequence + " · " + letter.plugin + " · " + letter.attempts + " attempt(s) · " + letter.payload_bytes + " bytes"),
      el("pre", { id: "letter-payload" }, payload));
  } catch (e) {
    box.replaceChildren(el("p", { class: "bad" }, e.message));
  }
}

function drawLetters(letters) {
  const rows = letters.slice().reverse().map(l =>
    el("tr", { class: "letter", "data-sequence": l.sequence, onclick: () => showLetter(l.sequence) },
      num(l.sequence), el("td", {}, l.route), el("td", { class: "bad" }, l.error_kind),
      el("td", {}, l.error.length > 140 ? l.error.slice(0, 140) + "…" : l.error), el("td", {}, l.failed_at)));
  fill("dead-letters", rows, "no dead letters");
  if (openLetter === null && letters.length) showLetter(letters[letters.length - 1].sequence);
}

async function refresh() {
  const [status, letters, plugins, changes, proposals] = await Promise.all([
    api("/api/v1/status"), api("/api/v1/dead-letters?limit=20"), api("/api/v1/plugins"),
    api("/api/v1/audit?limit=100"), api("/api/v1/proposals?state=pending")]);
  const now = Date.now();
  document.getElementById("host-version").textContent = status.version + (status.ready ? " · ready" : " · not ready");
  const nats = document.getElementById("nats");
  nats.textContent = status.nats_connected ? "connected" : "disconnected";
  nats.className = status.nats_connected ? "ok" : "bad";
  document.getElementById("uptime").textContent = duration(status.uptime_seconds);
  document.getElementById("updated").textContent = new Date(now).toLocaleTimeString();
  drawRoutes(status, now);
  drawSites(status);
  drawVersions(status, plugins);
  drawLetters(letters);
  drawChanges(changes, proposals);
}

poll(refresh);
