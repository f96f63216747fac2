import { describe, expect, it } from "vitest";
import { recommend, type Answers } from "../src/setup/recommend";
// @ts-expect-error: plain JS table shared with the Playwright test
import { CASES } from "./recommend-cases.mjs";

interface Case { answers: Answers; mode: string; reasonId: string; says: RegExp }
const cases = CASES as Case[];

describe("recommend: every combination of answers", () => {
  it("the table lists each of the 24 combinations exactly once", () => {
    const keys = new Set(cases.map((c) => JSON.stringify(c.answers)));
    expect(cases.length).toBe(24);
    expect(keys.size).toBe(24);
    for (const external of [true, false]) for (const mailbox of [true, false])
      for (const connector of ["ip", "cert", "no"]) for (const smtpAuth of [true, false])
        expect(keys.has(JSON.stringify({ external, mailbox, connector, smtpAuth }))).toBe(true);
  });

  for (const c of cases) {
    const a = c.answers;
    it(`external=${a.external} mailbox=${a.mailbox} connector=${a.connector} smtpAuth=${a.smtpAuth} → ${c.mode} (${c.reasonId})`, () => {
      const r = recommend(a);
      expect(r.mode).toBe(c.mode);
      expect(r.reasonId).toBe(c.reasonId);
      expect(r.reason).toMatch(c.says);
      // One sentence.
      expect(r.reason.replace(/\.$/, "")).not.toMatch(/\.\s/);
      // The route's sign-in and connector follow from the mode.
      expect(r.auth).toBe(c.mode === "submission" ? "oauth" : "none");
      expect(r.flow).toBe(c.mode === "submission" ? "client-credentials" : null);
      expect(r.connectorAuth).toBe(c.mode === "relay" ? a.connector : null);
      // Graph is named as the better route exactly when outside recipients have no working route today.
      expect(r.graph).toBe(c.reasonId === "graph-later" ? "better" : null);
      // Every route states the four trade-offs of Microsoft's table.
      expect(r.tradeoffs.map((t) => t.topic)).toEqual(["external", "sent-items", "limits", "anti-spam"]);
      const ext = r.tradeoffs[0];
      expect(ext.good).toBe(c.mode !== "direct-send");
      expect(r.tradeoffs[1].good).toBe(c.mode === "submission");
    });
  }

  it("the Graph fallback says honestly that outside mail will not arrive, and what would unlock a full route", () => {
    const r = recommend({ external: true, mailbox: true, connector: "no", smtpAuth: false });
    expect(r.warnings[0]).toMatch(/outside recipients will not arrive/);
    expect(r.warnings.join(" ")).toMatch(/allow it for this one mailbox/);
    expect(r.warnings.join(" ")).toMatch(/static public IP or a certificate/);
    const n = recommend({ external: true, mailbox: false, connector: "no", smtpAuth: true });
    expect(n.warnings.join(" ")).toMatch(/With a licensed mailbox and SMTP AUTH allowed/);
  });

  it("submission with a connector at hand mentions the relay for high volume", () => {
    expect(recommend({ external: true, mailbox: true, connector: "cert", smtpAuth: true }).warnings.join(" ")).toMatch(/10,000 recipients a day.*certificate/);
    expect(recommend({ external: true, mailbox: true, connector: "no", smtpAuth: true }).warnings.join(" ")).not.toMatch(/10,000/);
  });
});
