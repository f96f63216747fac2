//! The throttling page's per-mailbox table (`upstream.send_as = "sender"`:
//! each sender sends from their own mailbox, each with its own budget).
//! Rows as text, so the unit tests check what the page shows.

import { formatCountdown, formatDuration } from "./format";
import type { ThrottleStatus } from "./types";

export interface MailboxRow {
  address: string;
  minute: string;
  budget: string;
  next: string;
  state: string;
  tone: "ok" | "warn" | "bad";
}

/** One row per sending mailbox, the configured one first; none when only
 *  one mailbox sends (the cards above already show it). `left` turns a
 *  status countdown into the seconds left now. */
export function mailboxRows(t: ThrottleStatus, left: (secs: number | null | undefined) => number | null): MailboxRow[] {
  const rows = t.mailboxes ?? [];
  if (rows.length < 2) return [];
  const of = (n: number | null) => (n == null ? "" : ` / ${n.toLocaleString("en-US")}`);
  return rows.map((m) => {
    const busy = left(m.busy_for_secs);
    const quota = left(m.quota_blocked_for_secs);
    const state = quota ? `quota used up: resumes in ${formatDuration(quota)}`
      : busy ? `Microsoft asked it to wait ${formatDuration(busy)}`
      : m.in_flight ? `sending (${m.in_flight} at a time)` : "ready";
    return {
      address: m.address,
      minute: `${m.messages_last_minute}${of(t.messages_per_minute)}`,
      budget: `${m.recipients_in_window.toLocaleString("en-US")}${of(t.recipients_per_day)}`,
      next: formatCountdown(left(m.next_slot_in_secs)),
      state,
      tone: quota ? "bad" : busy ? "warn" : "ok",
    };
  });
}
