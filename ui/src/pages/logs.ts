//! Logs page: the engine's recent log lines (`get_logs`, then `log-line`
//! events), filtered by level and text, and "Copy for support".

import { clear, h } from "../dom";
import { api, errorText, on } from "../ipc";
import type { LogLine } from "../types";
import type { PageView } from "./page";

const LEVELS = ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"];
/** How many lines the page keeps (the engine's ring buffer holds the rest). */
const MAX_LINES = 2000;

export function lineText(l: LogLine): string {
  const t = typeof l.time === "number" ? new Date(l.time).toISOString() : l.time;
  return `${t} ${l.level.toUpperCase().padEnd(5)} ${l.message}`;
}

export function logsPage(): PageView {
  let lines: LogLine[] = [];
  let loaded = false;
  const level = h("select", { "aria-label": "Lowest level shown", id: "log-level", onchange: () => render() }, LEVELS.map((l, i) => h("option", { value: String(i), selected: l === "INFO" }, `${l[0]}${l.slice(1).toLowerCase()} and above`)));
  const text = h("input", { type: "search", placeholder: "Filter text…", "aria-label": "Filter log lines", id: "log-filter", oninput: () => render() });
  const note = h("span", { class: "muted", role: "status" });
  const copy = h("button", { class: "btn", id: "copy-logs", onclick: async () => {
    const body = shown().map(lineText).join("\n");
    try { await navigator.clipboard.writeText(`Postern log (${shown().length} lines)\n${body}\n`); note.textContent = "Copied — paste it into your message to support."; }
    catch { note.textContent = "Could not reach the clipboard; select the lines and copy them."; }
  } }, "Copy for support");
  const pre = h("div", { class: "log mono", id: "log", tabindex: 0, role: "log" });
  const el = h("div", { class: "page page-logs" }, h("div", { class: "toolbar" }, level, text, h("span", { class: "spacer" }), note, copy), pre);

  const shown = () => {
    const max = Number(level.value);
    const q = text.value.trim().toLowerCase();
    return lines.filter((l) => { const i = LEVELS.indexOf(l.level.toUpperCase()); return (i < 0 || i <= max) && (!q || l.message.toLowerCase().includes(q)); });
  };

  function render() {
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    const ls = shown();
    clear(pre, ls.length ? ls.map((l) => h("div", { class: `line lvl-${l.level.toLowerCase()}` }, lineText(l))) : h("p", { class: "empty" }, loaded ? "No log lines match." : "Loading…"));
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }

  async function load() {
    try {
      const fresh = await api.getLogs(lines.length ? lines[lines.length - 1].seq : undefined);
      lines = [...lines, ...fresh.filter((l) => !lines.length || l.seq > lines[lines.length - 1].seq)].slice(-MAX_LINES);
    } catch (e) { note.textContent = `Could not read the log: ${errorText(e)}`; }
    loaded = true;
    render();
  }

  void on("log-line", (l) => {
    if (lines.length && l.seq <= lines[lines.length - 1].seq) return;
    lines.push(l);
    if (lines.length > MAX_LINES) lines.splice(0, lines.length - MAX_LINES);
    if (!el.hidden) render();
  });
  return { el, shown: () => { if (!loaded) void load(); else render(); } };
}
