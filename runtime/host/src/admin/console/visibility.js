// The plant picture: reads the projection through the host's API every two seconds.
"use strict";

const amount = q => (q ? q.amount + " " + q.uom : "–");

function age(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 120) return seconds.toFixed(0) + " s";
  if (seconds < 7200) return (seconds / 60).toFixed(0) + " min";
  if (seconds < 172800) return (seconds / 3600).toFixed(1) + " h";
  return (seconds / 86400).toFixed(1) + " d";
}

function progress(order) {
  const done = order.completed ? parseFloat(order.completed.amount) : 0;
  const planned = order.planned ? parseFloat(order.planned.amount) : 0;
  const share = planned > 0 ? Math.min(1, done / planned) : 0;
  const track = el("span", { class: "track" }, el("span", { class: "bar", style: "width:" + (share * 120).toFixed(0) + "px" }));
  return el("td", {}, track, amount(order.completed) + " / " + amount(order.planned));
}

async function refresh() {
  const [inventory, orders, holds, commitments, sources] = await Promise.all([
    api("/api/v1/visibility/inventory"), api("/api/v1/visibility/work-orders"),
    api("/api/v1/visibility/holds"), api("/api/v1/visibility/commitments"), api("/api/v1/visibility/sources")]);
  fill("inventory", inventory.map(p => el("tr", { class: parseFloat(p.blocked) > 0 ? "blocked" : "", "data-item": p.item, "data-lot": p.lot || "" },
    el("td", {}, p.site), el("td", {}, p.item), el("td", {}, p.location), el("td", {}, p.lot),
    num(p.on_hand), num(p.blocked, parseFloat(p.blocked) > 0 ? "bad" : ""), num(p.available), num(p.in_transit),
    el("td", {}, p.uom), el("td", {}, p.holds.join(", ") || "–"))), "no stock positions yet");
  fill("work-orders", orders.map(o => el("tr", { "data-work-order": o.work_order },
    el("td", {}, o.site), el("td", {}, o.work_order), el("td", {}, o.item), el("td", {}, o.state),
    progress(o), num(amount(o.scrapped)))), "no work orders yet");
  fill("holds", holds.map(h => el("tr", { "data-hold": h.hold_id },
    el("td", {}, h.site), el("td", {}, h.hold_id), el("td", {}, h.item), el("td", {}, h.lot),
    el("td", { class: h.open ? "bad" : "ok" }, h.open ? "open" : "released"), el("td", {}, h.reason), num(h.blocked_positions))), "no holds");
  fill("commitments", commitments.map(c => el("tr", {},
    el("td", {}, c.site), el("td", {}, c.supplier), el("td", {}, c.item),
    num(amount(c.firm)), num(c.in_transit), num(c.received))), "no supplier commitments");
  fill("sources", sources.map(s => el("tr", { "data-system": s.system },
    el("td", {}, s.site), el("td", {}, s.system), num(s.events), el("td", {}, s.last_published),
    num(age(s.age_seconds), s.age_seconds > 3600 ? "warn" : ""))), "no events projected yet");
  document.getElementById("updated").textContent = new Date().toLocaleTimeString();
}

poll(refresh);
