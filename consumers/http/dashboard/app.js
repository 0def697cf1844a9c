// The dashboard: hash routes (#/alerts, #/lots, #/lot/ID, #/traces,
// #/trace/ID, #/flows) over the ledger's own API.  What the figures mean is
// the API's answer; this page only draws it.

import { AlertStream, ApiError, get, setToken, token } from "./api.js";
import { flowBars, formatNumber, lineageGraph, quantityChart } from "./charts.js";

const SEVERITIES = ["high", "medium", "low"];
const AS_OF_POINTS_MAX = 60; // a lot's chart asks the API for at most this many dates

const main = document.getElementById("main");
const alerts = new Map(); // alert_id -> the latest transition of it
const filters = { party: "", severity: "", kind: "", resolved: false };
let stream = null;

// -- small DOM helpers -------------------------------------------------------------------

function h(name, attrs = {}, ...children) {
  const node = document.createElement(name);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const enc = encodeURIComponent;
const lotLink = (lotId) => `#/lot/${enc(lotId)}`;
const traceLink = (traceId) => `#/trace/${enc(traceId)}`;

function show(...nodes) {
  main.replaceChildren(...nodes);
}

function problem(error) {
  if (error instanceof ApiError && error.status === 403) {
    return h("div", { class: "notice", id: "needs-auditor" },
      h("p", {}, h("b", {}, "This page needs an auditor token. "), error.message),
      h("p", {}, "A dashboard token reads the alerts only. Ask the operator for one: ",
        h("code", {}, "ledger credentials issue METI-AUDIT --role auditor"), ", then ",
        h("button", { type: "button", onclick: () => signIn() }, "change token"), "."));
  }
  if (error instanceof ApiError && error.status === 401) {
    signIn(error.message);
    return h("p", { class: "error" }, error.message);
  }
  return h("p", { class: "error" }, error instanceof ApiError ? error.message : `The ledger did not answer: ${error}`);
}

function day(text) {
  return text ? text.slice(0, 10) : "";
}

function when(text) {
  if (!text) return "";
  return text.replace("T", " ").replace(/\.\d+Z$/, "Z").replace(/:00(\+|Z)/, "$1");
}

// -- sign in -------------------------------------------------------------------------------

function signIn(message) {
  const dialog = document.getElementById("sign-in");
  const error = document.getElementById("sign-in-error");
  error.hidden = !message;
  error.textContent = message || "";
  if (!dialog.open) dialog.showModal();
}

document.getElementById("sign-in-form").addEventListener("submit", (event) => {
  const value = document.getElementById("token").value.trim();
  if (!value) {
    event.preventDefault();
    return;
  }
  setToken(value);
  document.getElementById("token").value = "";
  start();
});

document.getElementById("sign-out").addEventListener("click", () => {
  if (stream) stream.stop();
  stream = null;
  setToken(null);
  alerts.clear();
  signIn();
});

// -- the alert stream -------------------------------------------------------------------

function setStreamState(state, detail) {
  const badge = document.getElementById("stream-state");
  badge.textContent = state;
  badge.dataset.state = state;
  if (state === "refused") signIn(detail ? detail.message : "the token was refused");
}

let renderPending = false;

function onTransition(type, entry) {
  alerts.set(entry.alert_id, { ...entry, transition: entry.transition || type });
  // The journal is replayed from its start: redraw once per frame, not once per transition.
  if (currentPage() === "alerts" && !renderPending) {
    renderPending = true;
    requestAnimationFrame(() => {
      renderPending = false;
      renderAlertList();
    });
  }
}

function start() {
  document.getElementById("sign-out").hidden = false;
  if (stream) stream.stop();
  alerts.clear();
  stream = new AlertStream(onTransition, setStreamState);
  stream.start();
  route();
}

// -- pages ------------------------------------------------------------------------------------

function currentPage() {
  return (location.hash.replace(/^#\//, "").split(/[/?]/)[0] || "alerts");
}

function hashParams() {
  const query = location.hash.split("?")[1] || "";
  return new URLSearchParams(query);
}

function options(values, selected, all) {
  return [h("option", { value: "" }, all),
    ...values.map((v) => h("option", { value: v, selected: v === selected }, v))];
}

function alertsPage() {
  const seen = [...alerts.values()];
  const parties = [...new Set(seen.map((a) => a.party).filter(Boolean))].sort();
  const kinds = [...new Set(seen.map((a) => a.kind))].sort();
  const change = (name) => (event) => {
    filters[name] = event.target.type === "checkbox" ? event.target.checked : event.target.value;
    renderAlertList();
  };
  show(
    h("h2", {}, "Alerts as they happen"),
    h("form", { class: "filters", id: "alert-filters" },
      h("label", {}, "Party ", h("select", { id: "filter-party", onchange: change("party") },
        options(parties, filters.party, "every party"))),
      h("label", {}, "Severity ", h("select", { id: "filter-severity", onchange: change("severity") },
        options(SEVERITIES, filters.severity, "any severity"))),
      h("label", {}, "Kind ", h("select", { id: "filter-kind", onchange: change("kind") },
        options(kinds, filters.kind, "any kind"))),
      h("label", {}, h("input", { type: "checkbox", id: "filter-resolved", checked: filters.resolved,
                                  onchange: change("resolved") }), " show resolved")),
    h("p", { class: "note", id: "alert-count" }),
    h("p", { class: "note", id: "your-material-note", hidden: true },
      h("span", { class: "your-material" }, "your material"),
      ": addressed to another party, about material your party exported at the origin."),
    h("table", { id: "alerts", class: "alerts" },
      h("thead", {}, h("tr", {}, ["Severity", "Kind", "Party", "Lot", "Quantity", "Since (UTC)", "Message"]
        .map((t) => h("th", {}, t)))),
      h("tbody")),
  );
  renderAlertList();
}

function refreshFilterOptions() {
  const seen = [...alerts.values()];
  for (const [id, name, values, all] of [
    ["filter-party", "party", [...new Set(seen.map((a) => a.party).filter(Boolean))].sort(), "every party"],
    ["filter-kind", "kind", [...new Set(seen.map((a) => a.kind))].sort(), "any kind"]]) {
    const select = document.getElementById(id);
    if (select && select.options.length - 1 !== values.length) select.replaceChildren(...options(values, filters[name], all));
  }
}

function renderAlertList() {
  const body = document.querySelector("#alerts tbody");
  if (!body) return;
  refreshFilterOptions();
  const rows = [...alerts.values()]
    .filter((a) => filters.resolved || a.transition !== "resolved")
    .filter((a) => (!filters.party || a.party === filters.party) && (!filters.severity || a.severity === filters.severity)
      && (!filters.kind || a.kind === filters.kind))
    .sort((a, b) => b.seq - a.seq);
  const standing = [...alerts.values()].filter((a) => a.transition !== "resolved").length;
  document.getElementById("alert-count").textContent =
    `${standing} standing, ${rows.length} shown; the list follows the ledger live (newest first).`;
  document.getElementById("your-material-note").hidden = !rows.some((a) => a.about_your_material);
  // since and about_your_material are the API's (the stream's entries carry
  // them, as GET /v1/alerts does): when the alert first stood, and whether it
  // is about material the token's party exported, addressed to another.
  body.replaceChildren(...rows.map((a) => h("tr", {
    class: `severity-${a.severity} ${a.transition === "resolved" ? "resolved" : ""}`, "data-alert": a.alert_id,
    "data-kind": a.kind, "data-lot": a.lot_id || "", "data-your-material": a.about_your_material ? "true" : null },
    h("td", {}, h("span", { class: `badge ${a.severity}` }, a.severity), a.transition === "resolved" ? " resolved" : ""),
    h("td", {}, a.kind),
    h("td", {}, h("span", { class: "party" }, a.party || ""),
      a.about_your_material ? [" ", h("span", { class: "your-material" }, "your material")] : null),
    h("td", {}, a.lot_id ? h("a", { href: lotLink(a.lot_id) }, a.lot_id) : ""),
    h("td", { class: "num" }, a.quantity ? `${formatNumber(a.quantity)} ${a.unit || ""}` : ""),
    h("td", { class: "since", title: a.due_at ? `latest step due ${day(a.due_at)}` : null }, day(a.since || a.due_at)),
    h("td", { class: "message" }, a.message),
  )));
}

async function lotsPage() {
  show(h("h2", {}, "Lots"), h("p", { class: "note" }, "Loading…"));
  try {
    const { lots } = await get("/v1/lots");
    show(h("h2", {}, "Lots"),
      h("table", { class: "lots" },
        h("thead", {}, h("tr", {}, ["Lot", "Trace", "Item", "Holder", "Shipped", "On hand", "Unaccounted"]
          .map((t) => h("th", {}, t)))),
        h("tbody", {}, lots.map((r) => h("tr", { class: Number(r.unaccounted) > 0 ? "gap" : "" },
          h("td", {}, h("a", { href: lotLink(r.lot_id) }, r.lot_id)),
          h("td", {}, h("a", { href: traceLink(r.trace_id) }, r.trace_id)),
          h("td", {}, r.item_id), h("td", {}, `${r.holder} (${r.holder_country})`),
          h("td", { class: "num" }, `${formatNumber(r.shipped)} ${r.unit}`),
          h("td", { class: "num" }, formatNumber(r.on_hand)),
          h("td", { class: "num" }, formatNumber(r.unaccounted)))))));
  } catch (error) {
    show(h("h2", {}, "Lots"), problem(error));
  }
}

// Which reports a figure of the account rests on, by report type: for
// pointing at the evidence only; the figures themselves are the API's.
const FIGURE_REPORTS = {
  shipped: (r, lot) => r.child_lot_id === lot || (r.type === "exported" && r.lot_id === lot),
  received: (r) => r.type === "received",
  in_transit: (r, lot) => r.child_lot_id === lot || r.type === "exported" || r.type === "received",
  consumed: (r) => r.type === "consumed",
  re_exported: (r, lot) => r.type === "re_exported" && r.lot_id === lot,
  returned: (r, lot) => r.type === "returned" && r.lot_id === lot,
  lost: (r) => r.type === "lost",
  declared_on_hand: (r) => r.type === "stock_declared",
};
const FIGURES = ["shipped", "in_transit", "received", "consumed", "re_exported", "returned", "lost", "on_hand",
  "declared_on_hand", "unaccounted"];

async function lotPage(lotId) {
  const asOf = hashParams().get("as_of") || "";
  show(h("h2", {}, `Lot ${lotId}`), h("p", { class: "note" }, "Loading…"));
  let row, reports, unaccountedAlert, points;
  try {
    const [now, evidence] = await Promise.all([
      get(`/v1/lots/${enc(lotId)}`, { as_of: asOf }),
      get("/v1/reports", { lot: lotId, known_at: "" }),
    ]);
    row = now.lots[0];
    const cutoff = asOf ? `${asOf}T23:59:59.999999Z` : null;
    reports = evidence.reports.filter((r) => !cutoff || new Date(r.occurred_at) <= new Date(cutoff));
    const traceId = (row || evidence.reports[0] || {}).trace_id;
    const standing = traceId ? (await get("/v1/alerts", { trace: traceId, as_of: asOf })).alerts : [];
    const mine = standing.filter((a) => a.lot_id === lotId);
    unaccountedAlert = mine.find((a) => a.kind === "unaccounted");
    // The chart: the lot as of each report's time and each of its alerts' due dates.
    const allAlerts = traceId ? (await get("/v1/alerts", { trace: traceId })).alerts.filter((a) => a.lot_id === lotId) : [];
    const instants = [...new Set([...evidence.reports.map((r) => r.occurred_at),
      ...allAlerts.map((a) => a.due_at).filter(Boolean)])]
      .sort((a, b) => new Date(a) - new Date(b)).slice(0, AS_OF_POINTS_MAX);
    points = (await Promise.all(instants.map(async (instant) => {
      const answer = await get(`/v1/lots/${enc(lotId)}`, { as_of: new Date(instant).toISOString() });
      return answer.lots[0] ? { at: new Date(instant), row: answer.lots[0] } : null;
    }))).filter(Boolean);
    renderLot(lotId, asOf, row, reports, mine, unaccountedAlert, points);
  } catch (error) {
    show(h("h2", {}, `Lot ${lotId}`), problem(error));
  }
}

function renderLot(lotId, asOf, row, reports, alertsHere, unaccountedAlert, points) {
  const picker = h("input", { type: "date", id: "as-of", value: asOf,
    onchange: (event) => { location.hash = `#/lot/${enc(lotId)}${event.target.value ? `?as_of=${event.target.value}` : ""}`; } });
  const header = [
    h("h2", {}, `Lot ${lotId}`),
    h("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
      h("label", {}, "As of ", picker),
      h("button", { type: "button", id: "as-of-now", onclick: () => { location.hash = `#/lot/${enc(lotId)}`; } }, "now"),
      h("span", { class: "note", id: "as-of-label" }, asOf ? `where things stood at the end of ${asOf} (UTC)` : "where things stand now")),
  ];
  if (!row) {
    show(...header, h("p", { class: "notice", id: "lot-missing" },
      `Nothing about lot ${lotId} had occurred by then.`));
    return;
  }
  const evidenceFor = (figure) => {
    if (figure === "unaccounted") return unaccountedAlert ? unaccountedAlert.event_ids : [];
    if (figure === "on_hand") return reports.filter((r) => ["received", "consumed", "re_exported", "returned", "lost"]
      .includes(r.type) && r.lot_id === lotId).map((r) => r.event_id);
    const rule = FIGURE_REPORTS[figure];
    return rule ? reports.filter((r) => rule(r, lotId)).map((r) => r.event_id) : [];
  };
  const facts = h("dl", { class: "facts" },
    ...[["Trace", h("a", { href: traceLink(row.trace_id) }, row.trace_id)], ["Item", `${row.item_id} · ${row.item_name || ""}`],
      ["Classification", row.classification], ["From", `${row.shipper} (${row.shipper_country}) by ${row.origin.replace("_", "-")}`],
      ["Holder", `${row.holder} (${row.holder_country})`], ["End user", row.end_user || "—"],
      ["License", row.license_id || "—"], ["Shipped at", when(row.shipped_at)]]
      .flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  const account = h("table", { class: "account", id: "account" },
    h("thead", {}, h("tr", {}, h("th", {}, "Figure"), h("th", {}, `Quantity (${row.unit})`), h("th", {}, "Reports behind it (event ids)"))),
    h("tbody", {}, FIGURES.filter((f) => row[f] !== null && row[f] !== undefined).map((f) =>
      h("tr", { "data-figure": f, class: f === "unaccounted" && Number(row[f]) > 0 ? "gap" : "" },
        h("th", {}, f === "re_exported" ? "re-exported" : f.replaceAll("_", " ")), h("td", { class: "num" }, formatNumber(row[f])),
        h("td", { class: "ids" }, evidenceFor(f).join(", "))))));
  const reportTable = h("table", { class: "reports", id: "reports" },
    h("thead", {}, h("tr", {}, ["Occurred", "Event id", "Report", "Reporter", "Quantity", "Recorded"].map((t) => h("th", {}, t)))),
    h("tbody", {}, reports.map((r) => h("tr", {},
      h("td", {}, when(r.occurred_at)), h("td", { class: "ids" }, r.event_id),
      h("td", {}, r.type.replace("re_exported", "re-exported").replaceAll("_", " ") + (r.child_lot_id && r.child_lot_id !== lotId ? ` → ${r.child_lot_id}` : "")
        + (r.subject_event_id ? ` of ${r.subject_event_id}` : "")),
      h("td", {}, r.reporter), h("td", { class: "num" }, r.quantity ? `${formatNumber(r.quantity)} ${r.unit}` : ""),
      h("td", {}, when(r.recorded_at))))));
  const alertList = alertsHere.length
    ? h("ul", { class: "lot-alerts" }, alertsHere.map((a) => h("li", { class: `severity-${a.severity}` },
      h("span", { class: `badge ${a.severity}` }, a.severity), ` ${a.kind}: ${a.message}`)))
    : h("p", { class: "note" }, "No alert standing on this lot then.");
  show(...header,
    h("div", { class: "columns" },
      h("section", {}, h("h3", {}, "Account"), account),
      h("section", {}, h("h3", {}, "The lot"), facts, h("h3", {}, "Alerts standing"), alertList)),
    h("section", {}, h("h3", {}, "Quantities over time"),
      h("p", { class: "note" }, "The lot as of each of its reports and alert deadlines, asked of the API (as_of)."),
      h("div", { id: "chart" }, quantityChart(points, row.unit, asOf ? new Date(`${asOf}T23:59:59Z`) : null))),
    h("section", {}, h("h3", {}, asOf ? `Reports that had occurred by ${asOf}` : "Reports about this lot"), reportTable));
}

async function tracesPage() {
  show(h("h2", {}, "Lineage"), h("p", { class: "note" }, "Loading…"));
  try {
    const { lots } = await get("/v1/lots");
    const traces = new Map();
    for (const r of lots) {
      const t = traces.get(r.trace_id) || { lots: 0, unaccounted: 0, item: r.item_id, countries: new Set() };
      t.lots += 1;
      t.unaccounted += Number(r.unaccounted) > 0 ? 1 : 0;
      t.countries.add(r.holder_country);
      traces.set(r.trace_id, t);
    }
    show(h("h2", {}, "Lineage"), h("p", { class: "note" }, "Pick a trace to draw it: export, re-exports, ship-backs."),
      h("table", { class: "traces" },
        h("thead", {}, h("tr", {}, ["Trace", "Item", "Lots", "Countries", "Lots with something unaccounted"].map((t) => h("th", {}, t)))),
        h("tbody", {}, [...traces].map(([id, t]) => h("tr", { class: t.unaccounted ? "gap" : "" },
          h("td", {}, h("a", { href: traceLink(id) }, id)), h("td", {}, t.item), h("td", { class: "num" }, t.lots),
          h("td", {}, [...t.countries].join(", ")), h("td", { class: "num" }, t.unaccounted))))));
  } catch (error) {
    show(h("h2", {}, "Lineage"), problem(error));
  }
}

async function tracePage(traceId) {
  show(h("h2", {}, `Lineage of ${traceId}`), h("p", { class: "note" }, "Loading…"));
  try {
    const view = await get(`/v1/traces/${enc(traceId)}`);
    const item = view.whereabouts[0] || {};
    show(h("h2", {}, `Lineage of ${view.trace_ids.join(", ")}`),
      h("p", { class: "note" }, `${item.item_id || ""} ${item.item_name ? `· ${item.item_name}` : ""}. `,
        "Each box is a lot at its holder; arrows are hops with the quantity shipped (dashed: a ship-back). ",
        "Red: a quantity unaccounted at that holder."),
      h("div", { class: "graph", id: "lineage" }, lineageGraph(view.lineage, (n) => lotLink(n.lot_id))),
      h("h3", {}, "Alerts standing on this trace"),
      view.alerts.length ? h("ul", { class: "lot-alerts" }, view.alerts.map((a) => h("li", {},
        h("span", { class: `badge ${a.severity}` }, a.severity), " ", h("a", { href: lotLink(a.lot_id) }, a.lot_id),
        ` ${a.kind}: ${a.message}`))) : h("p", { class: "note" }, "None."));
  } catch (error) {
    show(h("h2", {}, `Lineage of ${traceId}`), problem(error));
  }
}

async function flowsPage() {
  const period = hashParams().get("period") || "";
  const input = h("input", { id: "period", value: period, placeholder: "2019, 2019-Q3, 2019-07", size: 16 });
  const header = [h("h2", {}, "Flows between countries"),
    h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); location.hash = `#/flows${input.value ? `?period=${enc(input.value)}` : ""}`; } },
      h("label", {}, "Period ", input), h("button", { type: "submit" }, "show"))];
  show(...header, h("p", { class: "note" }, "Loading…"));
  try {
    const { flows } = await get("/v1/flows", { period });
    const gaps = flows.filter((f) => Number(f.gap) !== 0).length;
    show(...header,
      h("p", { class: "note" }, `${flows.length} flows, ${gaps} with a gap between what was shipped and what was received. `,
        h("span", { class: "legend-shipped" }, "■ shipped"), " ", h("span", { class: "legend-received" }, "■ received")),
      h("table", { class: "flows", id: "flows" },
        h("thead", {}, h("tr", {}, ["Period", "From → to", "Item", "Shipped", "Received", "", "Gap", "Lots"].map((t) => h("th", {}, t)))),
        h("tbody", {}, flows.map((f) => h("tr", { class: Number(f.gap) !== 0 ? "gap" : "", "data-flow": `${f.from}-${f.to}-${f.item_id}` },
          h("td", {}, f.period), h("td", {}, `${f.from} → ${f.to}`), h("td", {}, f.item_id),
          h("td", { class: "num" }, `${formatNumber(f.shipped)} ${f.unit}`),
          h("td", { class: "num" }, `${formatNumber(f.received)} ${f.unit}`),
          h("td", {}, flowBars(f.shipped, f.received, Math.max(Number(f.shipped), Number(f.received)))),
          h("td", { class: "num gap-cell" }, Number(f.gap) !== 0 ? `${formatNumber(f.gap)} ${f.unit} (${f.gap_percent}%)` : "—"),
          h("td", { class: "ids" }, f.lots.map((l) => l.split("/").pop()).map((l, i) =>
            [i ? ", " : "", h("a", { href: lotLink(l) }, l)])))))));
  } catch (error) {
    show(...header, problem(error));
  }
}

function route() {
  const page = currentPage();
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("current", link.dataset.page === page || (page === "lot" && link.dataset.page === "lots")
      || (page === "trace" && link.dataset.page === "traces"));
  }
  if (!token()) {
    show(h("p", { class: "note" }, "Sign in with a token to see the ledger."));
    signIn();
    return;
  }
  const rest = location.hash.replace(/^#\//, "").split("?")[0].split("/").slice(1).map(decodeURIComponent).join("/");
  switch (page) {
    case "lots": return lotsPage();
    case "lot": return lotPage(rest);
    case "traces": return tracesPage();
    case "trace": return tracePage(rest);
    case "flows": return flowsPage();
    default: return alertsPage();
  }
}

window.addEventListener("hashchange", route);
if (token()) start();
else route();
