//! What Microsoft's message trace says became of a sent message, in the
//! CLI's words (src-tauri/src/trace_text.rs): the queue row's mark ("2
//! delivered · 1 bounced"), each recipient's lines in the detail pane, and
//! tracking's state in plain words for the throttling page. Pure (no DOM),
//! unit-tested in test/trace.test.ts.

import type { MessageInfo, Recipient, TraceOutcome, TrackingState } from "./types";

/** The CLI's order of the counts: what needs attention first. */
const COUNT_ORDER: TraceOutcome[] = ["bounced", "quarantined", "spam", "delivered", "pending", "unknown"];
/** Which outcome names the whole message: the worst, and "still tracking" before "all fine". */
const HEADLINE_ORDER: TraceOutcome[] = ["bounced", "quarantined", "spam", "pending", "unknown", "delivered"];
const LABEL: Record<TraceOutcome, string> = { pending: "tracking…", delivered: "delivered", bounced: "bounced", quarantined: "quarantined", spam: "spam", unknown: "unknown" };
export type Tone = "ok" | "warn" | "bad" | "busy" | "muted";
export const TRACE_TONE: Record<TraceOutcome, Tone> = { delivered: "ok", bounced: "bad", quarantined: "warn", spam: "warn", pending: "busy", unknown: "muted" };

export interface TraceMark {
  /** The outcome that names the message (`data-trace`). */
  kind: TraceOutcome;
  /** "delivered", "tracking…", or the counts when mixed: "2 delivered · 1 bounced". */
  text: string;
  tone: Tone;
  counts: Partial<Record<TraceOutcome, number>>;
}

/** The queue row's mark; null when no recipient is tracked. */
export function traceMark(m: Pick<MessageInfo, "recipients">): TraceMark | null {
  const outcomes = m.recipients.flatMap((r) => (r.trace ? [r.trace.outcome] : []));
  if (!outcomes.length) return null;
  const counts: Partial<Record<TraceOutcome, number>> = {};
  for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1;
  const kind = HEADLINE_ORDER.find((o) => counts[o])!;
  const present = COUNT_ORDER.filter((o) => counts[o]);
  const text = present.length === 1 ? LABEL[kind] : present.map((o) => `${counts[o]} ${o}`).join(" · ");
  return { kind, text, tone: TRACE_TONE[kind], counts };
}

/** One recipient's trace, as `postern queue show` words it. */
export interface TraceLines {
  outcome: TraceOutcome;
  /** "delivered (the trace says delivered)", "pending: not in Microsoft's message trace yet". */
  head: string;
  /** A bounce's code and Microsoft's own reason. */
  reason: string | null;
  /** What it means. */
  meaning: string | null;
  fix: string | null;
}

export function traceLines(r: Recipient): TraceLines | null {
  const t = r.trace;
  if (!t) return null;
  const notYet = t.outcome === "pending" && !t.status;
  const head = notYet ? "pending: not in Microsoft's message trace yet" : t.status ? `${t.outcome} (the trace says ${t.status})` : t.outcome;
  const said = t.diagnostic || t.code || null;
  const reason = said && t.code && !said.includes(t.code) ? `${t.code} ${said}` : said;
  return { outcome: t.outcome, head, reason, meaning: notYet ? null : t.summary || null, fix: t.fix || null };
}

/** Tracking's state for people (the throttling page's panel). */
export const TRACKING_WORDS: Record<TrackingState, { title: string; text: string; tone: Tone }> = {
  on: { title: "On", text: "Postern follows each sent message in Microsoft's message trace and tells you when one bounces after Microsoft took it.", tone: "ok" },
  off: { title: "Off", text: "Sent messages are not followed after Microsoft took them.", tone: "muted" },
  unavailable: { title: "Unavailable", text: "Tracking is on, but Postern cannot read Microsoft's message trace.", tone: "warn" },
  throttled: { title: "Slowed down", text: "Microsoft asked Postern to ask less often; the next poll waits.", tone: "warn" },
  failing: { title: "Failing", text: "The last look at the message trace did not work; Postern tries again.", tone: "bad" },
};
