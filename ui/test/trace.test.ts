import { describe, expect, it } from "vitest";
import { traceLines, traceMark } from "../src/trace";
import type { Recipient, TraceOutcome } from "../src/types";
import tracedQueue from "../e2e/fixtures/queue-traced.json";

const r = (address: string, outcome?: TraceOutcome, more: Partial<NonNullable<Recipient["trace"]>> = {}): Recipient =>
  ({ address, state: "sent", trace: outcome ? { outcome, checked_at: 1, ...more } : null });

describe("trace mark", () => {
  it("is absent when nothing is tracked", () => {
    expect(traceMark({ recipients: [r("a@c.com")] })).toBeNull();
  });
  it("names a single outcome", () => {
    expect(traceMark({ recipients: [r("a@c.com", "delivered"), r("b@c.com", "delivered")] })).toMatchObject({ kind: "delivered", text: "delivered", tone: "ok" });
    expect(traceMark({ recipients: [r("a@c.com", "pending")] })).toMatchObject({ kind: "pending", text: "tracking…", tone: "busy" });
  });
  it("counts when mixed, in the CLI's order, and the worst names it", () => {
    const m = traceMark({ recipients: [r("a@c.com", "delivered"), r("b@c.com", "bounced"), r("c@c.com", "delivered")] });
    expect(m).toMatchObject({ kind: "bounced", text: "1 bounced · 2 delivered", tone: "bad" });
    expect(traceMark({ recipients: [r("a@c.com", "delivered"), r("b@c.com", "pending")] })?.kind).toBe("pending");
  });
  it("reads the engine's traced message (fixture)", () => {
    const m = traceMark(tracedQueue[0] as never);
    expect(m).toMatchObject({ kind: "bounced", text: "1 bounced · 1 spam · 1 delivered" });
  });
});

describe("trace lines (as `postern queue show`)", () => {
  it("pending before the trace lists it", () => {
    expect(traceLines(r("a@c.com", "pending", { summary: "x" }))).toMatchObject({ head: "pending: not in Microsoft's message trace yet", meaning: null });
  });
  it("a bounce: the trace's word, code and diagnostic, meaning and fix", () => {
    const l = traceLines(r("a@c.com", "bounced", { status: "failed", code: "5.1.10", diagnostic: "Recipient not found", summary: "Unknown.", fix: "Check it." }));
    expect(l).toEqual({ outcome: "bounced", head: "bounced (the trace says failed)", reason: "5.1.10 Recipient not found", meaning: "Unknown.", fix: "Check it." });
    expect(traceLines(r("a@c.com", "bounced", { code: "5.1.10", diagnostic: "550 5.1.10 not found" }))?.reason).toBe("550 5.1.10 not found");
    expect(traceLines(r("a@c.com", "bounced", { code: "5.1.10" }))?.reason).toBe("5.1.10");
  });
});
