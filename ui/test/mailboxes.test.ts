import { describe, expect, it } from "vitest";
import { mailboxRows } from "../src/mailboxes";
import type { MailboxThrottle, ThrottleStatus } from "../src/types";

const row = (address: string, more: Partial<MailboxThrottle> = {}): MailboxThrottle => ({
  address, messages_last_minute: 0, next_slot_in_secs: 0, recipients_in_window: 0, recipients_left: 10000,
  recipients_free_in_secs: null, quota_blocked_for_secs: null, busy_for_secs: null, in_flight: 0, ...more,
});

const status = (mailboxes: MailboxThrottle[]): ThrottleStatus => ({
  messages_per_minute: 30, messages_last_minute: 0, next_slot_in_secs: 0, recipients_per_day: 10000, recipient_window_secs: 86400,
  recipients_in_window: 0, recipients_left: 10000, recipients_free_in_secs: null, quota_blocked_for_secs: null, busy_for_secs: null,
  eta_secs: null, eta_unix_ms: null, concurrent_per_mailbox: 4, mailboxes,
});

const asIs = (s: number | null | undefined) => s ?? null;

describe("per-mailbox throttle table", () => {
  it("is not shown for one mailbox", () => {
    expect(mailboxRows(status([row("scanner@contoso.com")]), asIs)).toEqual([]);
  });
  it("shows each mailbox's budget and back-off", () => {
    const rows = mailboxRows(status([
      row("scanner@contoso.com", { messages_last_minute: 2, recipients_in_window: 1200 }),
      row("alice@contoso.com", { busy_for_secs: 90, next_slot_in_secs: 90 }),
      row("bob@contoso.com", { quota_blocked_for_secs: 3600, in_flight: 1 }),
    ]), asIs);
    expect(rows.map((r) => [r.address, r.minute, r.budget, r.tone])).toEqual([
      ["scanner@contoso.com", "2 / 30", "1,200 / 10,000", "ok"],
      ["alice@contoso.com", "0 / 30", "0 / 10,000", "warn"],
      ["bob@contoso.com", "0 / 30", "0 / 10,000", "bad"],
    ]);
    expect(rows[0].state).toBe("ready");
    expect(rows[1].state).toMatch(/^Microsoft asked it to wait 1/);
    expect(rows[2].state).toMatch(/^quota used up: resumes in 1/);
  });
  it("counts down from the status's arrival", () => {
    const rows = mailboxRows(status([row("a@c.com", { busy_for_secs: 10 }), row("b@c.com")]), (s) => (s == null ? null : Math.max(0, s - 10)));
    expect(rows[0].tone).toBe("ok");
    expect(rows[0].state).toBe("ready");
  });
});
