//! The 24-hour chart on the Throttling page: sent messages (bars) and
//! recipients (line) per hour, as inline SVG with attributes only (no
//! inline styles, no chart library). Colours come from CSS classes.

import { s } from "./dom";
import { formatClock } from "./format";
import type { HistoryPoint } from "./types";

const W = 720, H = 200, L = 44, R = 44, T = 12, B = 26;

/** A "nice" axis maximum at or above `v` (1, 2, 5 × 10^n). */
export function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function historyChart(points: HistoryPoint[]): SVGElement {
  const pts = [...points].sort((a, b) => a.at - b.at).slice(-24);
  const n = Math.max(pts.length, 1);
  const mMax = niceMax(Math.max(0, ...pts.map((p) => p.messages)));
  const rMax = niceMax(Math.max(0, ...pts.map((p) => p.recipients)));
  const pw = W - L - R, ph = H - T - B;
  const bw = pw / n;
  const y = (v: number, max: number) => T + ph - (v / max) * ph;
  const totalM = pts.reduce((a, p) => a + p.messages, 0), totalR = pts.reduce((a, p) => a + p.recipients, 0);
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `Last 24 hours: ${totalM} messages sent, ${totalR} recipients`, preserveAspectRatio: "xMidYMid meet" });
  for (const f of [0, 0.5, 1]) {
    const yy = T + ph - f * ph;
    svg.append(s("line", { class: "grid-line", x1: L, x2: W - R, y1: yy, y2: yy }));
    svg.append(s("text", { class: "axis axis-m", x: L - 6, y: yy + 4, "text-anchor": "end" }, String(Math.round(mMax * f))));
    svg.append(s("text", { class: "axis axis-r", x: W - R + 6, y: yy + 4, "text-anchor": "start" }, String(Math.round(rMax * f))));
  }
  pts.forEach((p, i) => {
    const x = L + i * bw;
    const top = y(p.messages, mMax);
    svg.append(s("rect", { class: "bar", x: x + bw * 0.15, y: top, width: Math.max(1, bw * 0.7), height: Math.max(0, T + ph - top) },
      s("title", {}, `${formatClock(p.at)}: ${p.messages} messages, ${p.recipients} recipients`)));
    if (i % 4 === 0 || i === pts.length - 1) svg.append(s("text", { class: "axis", x: x + bw / 2, y: H - 8, "text-anchor": "middle" }, formatClock(p.at)));
  });
  if (pts.length) {
    const d = pts.map((p, i) => `${i ? "L" : "M"}${(L + i * bw + bw / 2).toFixed(1)},${y(p.recipients, rMax).toFixed(1)}`).join(" ");
    svg.append(s("path", { class: "rcpt-line", d, fill: "none" }));
    pts.forEach((p, i) => svg.append(s("circle", { class: "rcpt-dot", cx: L + i * bw + bw / 2, cy: y(p.recipients, rMax), r: 2.5 })));
  }
  return svg;
}
