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
      const signsIn = c.mode === "submission" || c.mode === "graph";
      expect(r.auth).toBe(signsIn ? "oauth" : "none");
      expect(r.flow).toBe(signsIn ? "client-credentials" : null);
      expect(r.connectorAuth).toBe(c.mode === "relay" ? a.connector : null);
      // Nothing is postponed to a later version any more.
      expect(JSON.stringify(r)).not.toMatch(/later version/);
      // Every route states the four trade-offs of Microsoft's table.
      expect(r.tradeoffs.map((t) => t.topic)).toEqual(["external", "sent-items", "limits", "anti-spam"]);
      const ext = r.tradeoffs[0];
      expect(ext.good).toBe(c.mode !== "direct-send");
      expect(r.tradeoffs[1].good).toBe(c.mode === "submission" || c.mode === "graph");
    });
  }

  it("Graph is recommended where Security Defaults leave no SMTP sign-in, with the Entra work it needs", () => {
    const r = recommend({ external: true, mailbox: true, connector: "no", smtpAuth: false });
    expect(r.mode).toBe("graph");
    expect(r.warnings.join(" ")).toMatch(/Mail\.Send and Mail\.ReadWrite.*admin consent.*client secret/);
    expect(r.warnings.join(" ")).toMatch(/RBAC for Applications/);
    expect(r.warnings.join(" ")).not.toMatch(/shared mailbox/);
    // Without a licensed mailbox: a shared one is enough.
    const n = recommend({ external: true, mailbox: false, connector: "no", smtpAuth: true });
    expect(n.mode).toBe("graph");
    expect(n.warnings[0]).toMatch(/shared mailbox .* needs no licence/);
  });

  it("Graph is named as the alternative next to a connector relay (with a mailbox) and Direct Send", () => {
    expect(recommend({ external: true, mailbox: true, connector: "ip", smtpAuth: false }).warnings.join(" ")).toMatch(/Microsoft Graph \(choose it below\)/);
    expect(recommend({ external: true, mailbox: false, connector: "ip", smtpAuth: false }).warnings.join(" ")).not.toMatch(/Microsoft Graph/);
    expect(recommend({ external: false, mailbox: true, connector: "no", smtpAuth: false }).warnings.join(" ")).toMatch(/Microsoft Graph \(choose it below\).*reaches everyone/);
  });

  it("submission with a connector at hand mentions the relay for high volume", () => {
    expect(recommend({ external: true, mailbox: true, connector: "cert", smtpAuth: true }).warnings.join(" ")).toMatch(/10,000 recipients a day.*certificate/);
    expect(recommend({ external: true, mailbox: true, connector: "no", smtpAuth: true }).warnings.join(" ")).not.toMatch(/10,000/);
  });
});
