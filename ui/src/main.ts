//! The app shell: left navigation, the status strip, and the pages (the six
//! main ones, then "Point a device here" and "Set up" at the bottom).
//! Pages are built once and shown/hidden; the store feeds them from events.

import "./styles.css";
import { h } from "./dom";
import { api, on } from "./ipc";
import { accountPage } from "./pages/account";
import { devicesPage } from "./pages/devices";
import { diagnosticsPage } from "./pages/diagnostics";
import { logsPage } from "./pages/logs";
import type { PageView } from "./pages/page";
import { queuePage } from "./pages/queue";
import { settingsPage } from "./pages/settings";
import { setupPage } from "./pages/setup";
import { throttlingPage } from "./pages/throttling";
import { statusStrip } from "./statusbar";
import { Store } from "./store";
import { PAGES, type Page } from "./types";

const TITLES: Record<Page, string> = { queue: "Queue", throttling: "Throttling", account: "Account", settings: "Settings", diagnostics: "Diagnostics", logs: "Logs", devices: "Point a device here", setup: "Set up" };
/** At the bottom of the navigation, after the main pages (no Ctrl+digit). */
const BOTTOM: Page[] = ["devices", "setup"];
const ALL: Page[] = [...PAGES, ...BOTTOM];
const NAV_LABEL: Partial<Record<Page, string>> = { devices: "Devices" };

export async function start(root: HTMLElement) {
  const store = new Store();
  const queue = queuePage(store);
  const views: Record<Page, PageView> = {
    queue, throttling: throttlingPage(store), account: accountPage(), settings: settingsPage(), diagnostics: diagnosticsPage(), logs: logsPage(),
    devices: devicesPage(), setup: setupPage(store, (p) => go(p)),
  };
  let current: Page = "queue";
  const navButtons = new Map<Page, HTMLButtonElement>();
  const title = h("h1", { class: "page-title", id: "page-title" });
  const nav = h("nav", { class: "nav", "aria-label": "Pages" },
    h("div", { class: "brand" }, h("span", { class: "brand-mark", "aria-hidden": "true" }), "Postern"),
    h("ul", {}, PAGES.map((p, i) => navItem(p, `Control+${i + 1}`))),
    h("ul", { class: "nav-bottom" }, BOTTOM.map((p) => navItem(p, null))));
  function navItem(p: Page, keys: string | null) {
    const b = h("button", { class: "nav-item", "data-page": p, "aria-keyshortcuts": keys, onclick: () => go(p) }, h("span", { class: `nav-icon icon-${p}`, "aria-hidden": "true" }), NAV_LABEL[p] ?? TITLES[p]);
    navButtons.set(p, b);
    return h("li", {}, b);
  }
  nav.addEventListener("keydown", (e) => {
    const i = ALL.indexOf((document.activeElement as HTMLElement)?.dataset?.page as Page);
    if (i < 0) return;
    const j = e.key === "ArrowDown" ? (i + 1) % ALL.length : e.key === "ArrowUp" ? (i + ALL.length - 1) % ALL.length : -1;
    if (j >= 0) { e.preventDefault(); go(ALL[j]); navButtons.get(ALL[j])!.focus(); }
  });
  const main = h("main", { class: "content", id: "content" }, title, Object.entries(views).map(([p, v]) => { v.el.hidden = true; v.el.id = `page-${p}`; return v.el; }));
  root.append(h("a", { class: "skip", href: "#content" }, "Skip to content"), nav, h("div", { class: "body" }, statusStrip(store), main));

  function go(p: Page) {
    if (!ALL.includes(p)) return;
    current = p;
    for (const [k, v] of Object.entries(views)) v.el.hidden = k !== p;
    for (const [k, b] of navButtons) { if (k === p) b.setAttribute("aria-current", "page"); else b.removeAttribute("aria-current"); }
    title.textContent = TITLES[p];
    document.title = `Postern — ${TITLES[p]}`;
    if (location.hash !== `#${p}`) history.replaceState(null, "", `#${p}`);
    views[p].shown?.();
  }

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey && !e.altKey && !e.shiftKey && /^[1-6]$/.test(e.key)) { e.preventDefault(); go(PAGES[Number(e.key) - 1]); navButtons.get(current)!.focus(); }
  });
  window.addEventListener("hashchange", () => go(location.hash.slice(1) as Page));

  const asked = location.hash.slice(1);
  go((ALL as string[]).includes(asked) ? (asked as Page) : "queue");
  const openMessage = (id: string) => { go("queue"); queue.select(id); };
  await Promise.all([
    on("navigate", (e) => go(e.page)),
    on("open-message", (e) => openMessage(e.id)),
  ]);
  // Listening now: ask what this window was opened for (an event sent
  // before the listeners above were registered would have been lost).
  const pending = await api.takePending().catch(() => null);
  if (pending?.event === "navigate") go(pending.payload.page);
  else if (pending?.event === "open-message") openMessage(pending.payload.id);
  else if (!asked) {
    // First start (no config file yet): the assistant, unless the shell already said where to go.
    const setup = await api.getSetup().catch(() => null);
    if (setup?.first_run) go("setup");
  }
  await store.start();
}

void start(document.getElementById("app")!);
