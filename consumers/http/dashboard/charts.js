// Hand-made SVG: a step chart of a lot's quantities over time, a trace's
// lineage as a left-to-right graph, and shipped-vs-received bars.  Every
// text goes in through textContent, never as markup.

const SVG = "http://www.w3.org/2000/svg";

export function el(name, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== null) node.textContent = text;
  return node;
}

export const SERIES = [
  { key: "shipped", label: "shipped", color: "#3b6fb6" },
  { key: "received", label: "received", color: "#2a9d8f" },
  { key: "consumed", label: "consumed", color: "#8a5cc2" },
  { key: "on_hand", label: "on hand", color: "#e09f3e" },
  { key: "unaccounted", label: "unaccounted", color: "#c0392b" },
];

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

function day(date) {
  return date.toISOString().slice(0, 10);
}

// points: [{at: Date, row: {shipped: "100", ...}}] in time order; a step
// chart (a quantity holds until the next report changes it).
// marker: a Date drawn as a vertical line (the as-of date picked on the page).
export function quantityChart(points, unit, marker = null) {
  const width = 760, height = 300, left = 56, right = 130, top = 40, bottom = 40;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img",
                          "aria-label": "quantities of the lot over time" });
  if (!points.length) return svg;
  const t0 = points[0].at.getTime();
  const t1 = Math.max(points[points.length - 1].at.getTime(), t0 + 86400000);
  const span = t1 - t0;
  const tEnd = t1 + span * 0.08; // room after the last point, where the last values hold
  const vmax = niceMax(Math.max(...points.flatMap((p) => SERIES.map((s) => Number(p.row[s.key] || 0)))));
  const x = (t) => left + ((t - t0) / (tEnd - t0)) * (width - left - right);
  const y = (v) => top + (1 - v / vmax) * (height - top - bottom);
  for (let i = 0; i <= 4; i++) {
    const v = (vmax * i) / 4;
    svg.append(el("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), class: "grid" }));
    svg.append(el("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" }, formatNumber(v)));
  }
  svg.append(el("text", { x: left - 6, y: top - 12, "text-anchor": "end", class: "tick" }, unit || ""));
  for (const p of points) {
    svg.append(el("line", { x1: x(p.at.getTime()), x2: x(p.at.getTime()), y1: top, y2: height - bottom,
                            class: "report-mark" }));
  }
  if (marker && marker.getTime() >= t0 && marker.getTime() <= tEnd) {
    const mx = x(marker.getTime());
    svg.append(el("line", { x1: mx, x2: mx, y1: top - 20, y2: height - bottom, class: "as-of-mark" }));
    svg.append(el("text", { x: mx + 4, y: top - 10, class: "as-of-label" }, `as of ${day(marker)}`));
  }
  svg.append(el("text", { x: width - right + 8, y: top, class: "tick" }, "latest"));
  const labelled = new Set();
  points.forEach((p, i) => {
    const px = x(p.at.getTime());
    const previous = [...labelled].pop();
    if (previous === undefined || px - previous > 70) {
      svg.append(el("text", { x: px, y: height - bottom + 16, "text-anchor": "middle", class: "tick" }, day(p.at)));
      labelled.add(px);
    }
  });
  // Lines nearer the end of SERIES are drawn last; equal values are offset
  // by a pixel so that a line hidden under another still shows.
  SERIES.forEach((series, n) => {
    let d = "";
    points.forEach((p, i) => {
      const v = y(Number(p.row[series.key] || 0)) + (n - 2) * 1.2;
      const px = x(p.at.getTime());
      d += i === 0 ? `M${px},${v}` : `H${px}V${v}`;
    });
    d += `H${x(tEnd)}`;
    svg.append(el("path", { d, class: "series", stroke: series.color, "data-series": series.key }));
    const last = Number(points[points.length - 1].row[series.key] || 0);
    svg.append(el("circle", { cx: x(tEnd), cy: y(last) + (n - 2) * 1.2, r: 3, fill: series.color }));
    svg.append(el("text", { x: width - right + 8, y: top + 14 + n * 18, fill: series.color, class: "legend" },
                  `${series.label} ${formatNumber(last)}`));
  });
  return svg;
}

export function formatNumber(value) {
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  return n.toLocaleString("en-US", { maximumFractionDigits: 3 });
}

// The lineage: each lot a box at its holder (depth = hops from the export),
// each hop an arrow labelled with what was shipped and received; a lot
// with something unaccounted is marked red with the quantity.
export function lineageGraph(roots, linkFor) {
  const boxW = 250, boxH = 94, colGap = 150, rowGap = 26, pad = 16;
  const placed = [];
  let row = 0;
  const place = (node, depth) => {
    const children = node.children || [];
    let yMid;
    if (!children.length) {
      yMid = row * (boxH + rowGap);
      row += 1;
    } else {
      const ys = children.map((c) => place(c, depth + 1));
      yMid = (ys[0] + ys[ys.length - 1]) / 2;
    }
    placed.push({ node, depth, y: yMid });
    return yMid;
  };
  roots.forEach((r) => place(r, 0));
  const depthMax = Math.max(0, ...placed.map((p) => p.depth));
  const width = pad * 2 + (depthMax + 1) * boxW + depthMax * colGap;
  const height = pad * 2 + Math.max(1, row) * (boxH + rowGap) - rowGap + 16;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "lineage", width, height, role: "img",
                          "aria-label": "lineage of the trace" });
  const defs = el("defs");
  const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7,
                                markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(el("path", { d: "M0,0L10,5L0,10z", fill: "#555" }));
  defs.append(marker);
  svg.append(defs);
  const at = new Map(placed.map((p) => [p.node, { x: pad + p.depth * (boxW + colGap), y: pad + 14 + p.y }]));
  // Arrows first, boxes over them.
  for (const { node } of placed) {
    const from = at.get(node);
    for (const child of node.children || []) {
      const to = at.get(child);
      const x1 = from.x + boxW, y1 = from.y + boxH / 2, x2 = to.x, y2 = to.y + boxH / 2;
      const mid = (x1 + x2) / 2;
      const cls = child.origin === "ship_back" ? "hop ship-back" : "hop";
      svg.append(el("path", { d: `M${x1},${y1}C${mid},${y1} ${mid},${y2} ${x2 - 2},${y2}`, class: cls,
                              "marker-end": "url(#arrow)" }));
      const label = `${child.origin === "ship_back" ? "ship-back" : "re-export"} ${formatNumber(child.shipped)} ${child.unit}`;
      // Above the arrow where it comes from below or level, under it where it comes from above.
      const ly = y2 > y1 ? y2 + 15 : y2 - 6;
      svg.append(el("text", { x: x2 - 6, y: ly, "text-anchor": "end", class: "hop-label" }, label));
    }
  }
  for (const { node } of placed) {
    const { x, y } = at.get(node);
    const unaccounted = Number(node.unaccounted || 0);
    const link = el("a", { href: linkFor(node) });
    const group = el("g", { class: unaccounted > 0 ? "lot unaccounted" : "lot", "data-lot": node.lot_id });
    group.append(el("rect", { x, y, width: boxW, height: boxH, rx: 6 }));
    group.append(el("text", { x: x + 8, y: y + 17, class: "lot-id" }, `${node.lot_id}`));
    group.append(el("text", { x: x + 8, y: y + 34 }, `${node.holder} (${node.holder_country})`));
    group.append(el("text", { x: x + 8, y: y + 51 },
                    `shipped ${formatNumber(node.shipped)} · received ${formatNumber(node.received)} ${node.unit}`));
    group.append(el("text", { x: x + 8, y: y + 68 },
                    `consumed ${formatNumber(node.consumed)} · on hand ${formatNumber(node.on_hand)}`));
    if (unaccounted > 0) {
      group.append(el("text", { x: x + 8, y: y + 85, class: "warn" },
                      `unaccounted ${formatNumber(node.unaccounted)} ${node.unit}`));
    }
    if (node.origin === "export") {
      svg.append(el("text", { x, y: y - 5, class: "hop-label" },
                    `export ${formatNumber(node.shipped)} ${node.unit} from ${node.shipper} (${node.shipper_country})`));
    }
    link.append(group);
    svg.append(link);
  }
  return svg;
}

// One horizontal pair of bars per flow: shipped above, received below.
export function flowBars(shipped, received, max) {
  const width = 240, height = 26;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "bars" });
  const w = (v) => (max > 0 ? (Number(v) / max) * (width - 2) : 0);
  svg.append(el("rect", { x: 0, y: 2, width: w(shipped), height: 10, class: "bar-shipped" }));
  svg.append(el("rect", { x: 0, y: 14, width: w(received), height: 10, class: "bar-received" }));
  return svg;
}
