// The plant picture: reads the projection through the host's API every two seconds.
"use strict";

const amount = q => (q ? q.amount + " " + q.uom : "–");

// A unit, or what a sum in it took in units it could not convert, as the CLI says it: such a
// sum mixes units and is never shown as if it were one.
const inUnit = (uom, mismatches) =>
  (uom || "–") + (mismatches ? " (+" + mismatches + " in other units)" : "");
// The count of quantities a row's sums took in other units, as the CLI's work-order and
// commitment tables say it (one count for all the row's sums: which of them took the other
// units is not told apart, so each sum shown is flagged).
const mixed = mismatches => (mismatches ? mismatches + " (sum mixes units)" : "–");
const flagged = mismatches => (mismatches ? { class: "warn", title: mixed(mismatches) } : {});
// A zero sum mixes nothing (a zero in another unit is not counted).
const sum = (q, mismatches) =>
  amount(q) + (q && mismatches && parseFloat(q.amount) !== 0 ? " (sums mix units)" : "");

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
  return el("td", flagged(order.unit_mismatches), track,
    sum(order.completed, order.unit_mismatches) + " / " + amount(order.planned));
}

async function refresh() {
  const [inventory, orders, holds, commitments, sources] = await Promise.all([
    api("/api/v1/visibility/inventory"), api("/api/v1/visibility/work-orders"),
    api("/api/v1/visibility/holds"), api("/api/v1/visibility/commitments"), api("/api/v1/visibility/sources")]);
  fill("inventory", inventory.map(p => el("tr", { class: parseFloat(p.blocked) > 0 ? "blocked" : "", "data-item": p.item, "data-lot": p.lot || "" },
    el("td", {}, p.site), el("td", {}, p.item), el("td", {}, p.location), el("td", {}, p.lot),
    num(p.on_hand), num(p.blocked, parseFloat(p.blocked) > 0 ? "bad" : ""), num(p.available), num(p.in_transit),
    el("td", p.unit_mismatches ? { class: "warn" } : {}, inUnit(p.uom, p.unit_mismatches)),
    el("td", {}, p.holds.join(", ") || "–"))), "no stock positions yet");
  fill("work-orders", orders.map(o => el("tr", { "data-work-order": o.work_order },
    el("td", {}, o.site), el("td", {}, o.work_order), el("td", {}, o.item), el("td", {}, o.state),
    progress(o), el("td", Object.assign({}, flagged(o.unit_mismatches), { class: "num" + (o.unit_mismatches ? " warn" : "") }), sum(o.scrapped, o.unit_mismatches)),
    el("td", flagged(o.unit_mismatches), mixed(o.unit_mismatches)))), "no work orders yet");
  fill("holds", holds.map(h => el("tr", { "data-hold": h.hold_id },
    el("td", {}, h.site), el("td", {}, h.hold_id), el("td", {}, h.item), el("td", {}, h.lot),
    el("td", { class: h.open ? "bad" : "ok" }, h.open ? "open" : "released"), el("td", {}, h.reason), num(h.blocked_positions))), "no holds");
  fill("commitments", commitments.map(c => el("tr", {},
    el("td", {}, c.site), el("td", {}, c.supplier), el("td", {}, c.item),
    num(sum(c.firm, c.unit_mismatches), c.unit_mismatches ? "warn" : ""),
    num(c.in_transit, c.unit_mismatches ? "warn" : ""), num(c.received, c.unit_mismatches ? "warn" : ""),
    el("td", flagged(c.unit_mismatches), mixed(c.unit_mismatches)))), "no supplier commitments");
  fill("sources", sources.map(s => el("tr", { "data-system": s.system },
    el("td", {}, s.site), el("td", {}, s.system), num(s.events), el("td", {}, s.last_published),
    num(age(s.age_seconds), s.age_seconds > 3600 ? "warn" : ""))), "no events projected yet");
  document.getElementById("updated").textContent = new Date().toLocaleTimeString();
}

poll(refresh);
