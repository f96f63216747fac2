//! Throttling page: Microsoft's sending limits as Postern sees them — the
//! minute window, the 24-hour recipient budget, open connections, pauses for
//! quota or a busy server, when the queue will be drained, and 24 h history.
//! With several sending mailbox (`upstream.send_as = "sender"`), a table of
//! each mailbox's budget. Below them, delivery tracking (the message trace
//! after Microsoft took a message): its state, last and next poll, counters.

import { historyChart } from "../chart";
import { clear, h } from "../dom";
import { countdownLeft, formatCountdown, formatDuration, formatRelative } from "../format";
import { api, errorText } from "../ipc";
import { mailboxRows } from "../mailboxes";
import type { Store } from "../store";
import { TRACKING_WORDS } from "../trace";
import type { HistoryPoint, Status } from "../types";
import type { PageView } from "./page";

function card(id: string, title: string, value: Node | string, sub: Node | string | null, meter?: { value: number; max: number }): HTMLElement {
  return h("section", { class: "card", id },
    h("h3", {}, title), h("p", { class: "big" }, value),
    meter ? h("meter", { min: 0, max: meter.max, value: Math.min(meter.value, meter.max), low: meter.max * 0.7, high: meter.max * 0.9, optimum: 0, "aria-label": title }) : null,
    sub ? h("p", { class: "muted" }, sub) : null);
}

/** The "Delivery tracking" panel, from `status.tracking`. */
function trackingPanel(st: Status | null, now: number): HTMLElement {
  const t = st?.tracking;
  const body = !st || !t || !st.running
    ? [h("p", { class: "empty", id: "tracking-absent" }, "Not known: the relay is not running, so nothing follows sent messages in Microsoft's message trace now.")]
    : (() => {
        const w = TRACKING_WORDS[t.state];
        const active = t.state !== "off" && t.state !== "unavailable";
        return [
          h("p", { class: "tracking-state" }, h("span", { class: `pill pill-${w.tone === "ok" ? "ok" : w.tone === "bad" ? "bad" : "warn"}`, id: "tracking-state" }, w.title), " ", w.text),
          t.reason ? h("p", { class: "tracking-reason", id: "tracking-reason" }, t.reason) : null,
          t.fix ? h("p", { class: "tracking-fix", id: "tracking-fix" }, h("strong", {}, "Fix: "), t.fix) : null,
          active ? h("dl", { id: "tracking-facts" },
            h("dt", {}, "Last poll"), h("dd", { id: "tracking-last" }, t.last_poll ? formatRelative(t.last_poll, now) : "not yet"),
            h("dt", {}, "Next poll"), h("dd", { id: "tracking-next" }, t.next_poll ? formatRelative(t.next_poll, now) : "—"),
            h("dt", {}, "Messages followed"), h("dd", { id: "tracking-followed" }, String(t.tracked)),
            h("dt", {}, "Requests made"), h("dd", { id: "tracking-requests" }, `${t.list_requests} trace ${t.list_requests === 1 ? "query" : "queries"}, ${t.detail_requests} details`),
            h("dt", {}, "Details budget"), h("dd", { id: "tracking-budget" }, `${t.details_left} details requests left in this 5 minutes`)) : null,
        ];
      })();
  return h("section", { class: "panel", id: "tracking-panel", "data-state": st?.running ? (t?.state ?? "absent") : "absent" }, h("h3", {}, "Delivery tracking"), body);
}

export function throttlingPage(store: Store): PageView {
  const cards = h("div", { class: "cards" });
  const pauses = h("div", { class: "pauses" });
  const chartBox = h("div", { class: "chart-box", id: "throttle-chart" });
  const perMailbox = h("div", { id: "throttle-mailboxes" });
  const tracking = h("div", { id: "throttle-tracking" });
  let history: HistoryPoint[] = [];
  let historyError = "";
  const el = h("div", { class: "page page-throttling" }, pauses, cards, perMailbox,
    h("section", { class: "panel" }, h("h3", {}, "Last 24 hours"),
      h("p", { class: "legend" }, h("span", { class: "key key-bar" }), "messages sent per hour ", h("span", { class: "key key-line" }), "recipients per hour"), chartBox), tracking);

  async function loadHistory() {
    try { history = await api.getThrottleHistory(); historyError = ""; } catch (e) { historyError = errorText(e); }
    clear(chartBox, historyError ? h("p", { class: "empty" }, `Could not read the history: ${historyError}`) : history.length ? historyChart(history) : h("p", { class: "empty" }, "Nothing sent in the last 24 hours."));
  }

  function render() {
    const st = store.status;
    const t = st?.throttle;
    const now = Date.now();
    clear(tracking, trackingPanel(st, now));
    if (!st) { clear(cards, h("p", { class: "empty" }, "Waiting for Postern…")); clear(pauses); clear(perMailbox); return; }
    const left = (v: number | null | undefined) => countdownLeft(v, store.statusAt, now);
    const waiting = st.queue.queued + st.queue.sending + st.queue.deferred;
    clear(pauses,
      t?.quota_blocked_for_secs ? h("p", { class: "banner banner-bad", id: "quota-pause" }, `Microsoft says the mailbox's quota is used up (554 5.2.0). Postern stops sending for ${formatDuration(left(t.quota_blocked_for_secs)!)}, then tries again. Nothing bounces.`) : null,
      t?.busy_for_secs ? h("p", { class: "banner banner-warn", id: "busy-pause" }, `Microsoft is busy. Every connection stands back for ${formatDuration(left(t.busy_for_secs)!)}.`) : null,
      st.paused ? h("p", { class: "banner banner-warn" }, "Delivery is paused by you (Queue page → Resume delivery).") : null);
    const rows = t ? mailboxRows(t, left) : [];
    clear(perMailbox, rows.length ? h("section", { class: "panel" }, h("h3", {}, "Each sending mailbox"),
      h("p", { class: "muted" }, "Each sender sends from their own mailbox, and Microsoft counts each mailbox's limits separately."),
      h("table", { class: "mailboxes" },
        h("thead", {}, h("tr", {}, ...["Mailbox", "Messages this minute", "Recipients in 24 h", "Next slot", "State"].map((c) => h("th", {}, c)))),
        h("tbody", {}, ...rows.map((r) => h("tr", { class: `tone-${r.tone}` },
          h("td", {}, r.address), h("td", {}, r.minute), h("td", {}, r.budget), h("td", {}, r.next), h("td", {}, r.state)))))) : null);
    if (!t) {
      clear(cards, h("p", { class: "empty" }, `No sending limits apply in ${st.upstream.mode} mode.`),
        card("card-conns", "Open connections", `${st.connections}`, null));
      return;
    }
    const perMin = t.messages_per_minute;
    const perDay = t.recipients_per_day;
    const slot = left(t.next_slot_in_secs);
    clear(cards,
      card("card-minute", "Messages this minute", perMin ? `${t.messages_last_minute} / ${perMin}` : `${t.messages_last_minute}`,
        h("span", {}, "Next slot ", h("strong", { id: "next-slot" }, formatCountdown(slot))), perMin ? { value: t.messages_last_minute, max: perMin } : undefined),
      card("card-budget", "Recipients in 24 h", perDay ? `${t.recipients_in_window.toLocaleString("en-US")} / ${perDay.toLocaleString("en-US")}` : t.recipients_in_window.toLocaleString("en-US"),
        t.recipients_free_in_secs != null ? `${(t.recipients_left ?? 0).toLocaleString("en-US")} left; the oldest stop counting in ${formatDuration(left(t.recipients_free_in_secs)!)}` : `${(t.recipients_left ?? 0).toLocaleString("en-US")} left`,
        perDay ? { value: t.recipients_in_window, max: perDay } : undefined),
      card("card-conns", "Open connections", `${st.connections} / 3`, "Microsoft allows 3 per mailbox", { value: st.connections, max: 3 }),
      card("card-eta", "Queue drained", waiting === 0 ? "Now" : t.eta_secs != null ? formatCountdown(left(t.eta_secs)) : "—",
        waiting === 0 ? "Nothing waiting" : `${waiting} waiting${st.queue.held ? ` (${st.queue.held} held are not counted)` : ""}${t.eta_unix_ms ? ` · at ${new Date(t.eta_unix_ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}` : ""}`));
  }

  store.subscribe(render);
  // A sent message changes the hour's bar: re-read the history (only then, never on a timer).
  store.onEvent((e) => { if (e.event === "sent" && !el.hidden) void loadHistory(); });
  store.onTick(() => { if (!el.hidden) render(); });
  render();
  return { el, shown: () => { render(); void loadHistory(); } };
}
