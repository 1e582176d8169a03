// The postings: the projection's posting state and the host's held events, every two seconds.
"use strict";

function seconds(s) {
  if (s === null || s === undefined) return "–";
  if (s < 120) return s.toFixed(s < 10 ? 1 : 0) + " s";
  if (s < 7200) return (s / 60).toFixed(0) + " min";
  if (s < 172800) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(1) + " d";
}

const reasons = r => Object.entries(r).map(([reason, n]) => n + "× " + reason).join("; ") || "–";
const stateClass = { posted: "ok", rejected: "bad", pending: "warn" };

async function refresh() {
  // The failed postings are asked for on their own: picked out of the first rows of all of
  // them, they were hidden behind the pending ones during an outage.
  const [view, rejected, outbound] = await Promise.all([api("/api/v1/visibility/postings"),
    api("/api/v1/visibility/postings?state=rejected"), api("/api/v1/outbound")]);
  const down = Object.fromEntries(outbound.targets.map(t => [t.name, t.down]));
  fill("held", outbound.held.map(h => el("tr", { "data-event": h.event_id },
    el("td", {}, h.route), el("td", {}, h.event_id), el("td", {}, h.kind), el("td", {}, h.site),
    el("td", {}, h.business_key), el("td", {}, h.since), el("td", { class: "warn" }, h.why))), "no event held at a gate");
  fill("targets", view.targets.map(t => el("tr", { "data-target": t.target },
    el("td", {}, t.target), el("td", { class: down[t.target] ? "bad" : "ok" }, down[t.target] ? "down" : "up"),
    num(t.posted), num(t.rejected, t.rejected ? "bad" : ""), num(t.pending, t.pending ? "warn" : ""),
    num(seconds(t.oldest_pending_seconds)), num(seconds(t.delay.mean_seconds)), num(seconds(t.delay.max_seconds)),
    el("td", {}, reasons(t.rejections)))), "nothing posted yet");
  fill("failed", rejected.postings.map(p => el("tr", { "data-event": p.event_id },
    el("td", {}, p.target), el("td", {}, p.kind), el("td", {}, p.site), el("td", {}, p.business_key),
    el("td", {}, p.source_time), el("td", { class: "bad" }, p.reason))), "no failed postings");
  fill("sites", view.sites.map(s => el("tr", { "data-site": s.site },
    el("td", {}, s.site), num(s.posted), num(s.rejected, s.rejected ? "bad" : ""), num(s.pending),
    el("td", {}, reasons(s.rejections)))), "no postings");
  fill("postings", view.postings.map(p => el("tr", { "data-event": p.event_id, "data-state": p.state },
    el("td", { class: stateClass[p.state] }, p.state), el("td", {}, p.target), el("td", {}, p.route),
    el("td", {}, p.kind), el("td", {}, p.site), el("td", {}, p.business_key), el("td", {}, p.source_time),
    el("td", {}, p.document), num(seconds(p.state === "pending" ? p.pending_seconds : p.delay_seconds)))), "no postings yet");
  document.getElementById("updated").textContent = new Date().toLocaleTimeString();
}

poll(refresh);
