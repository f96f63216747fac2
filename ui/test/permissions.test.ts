import { describe, expect, it } from "vitest";
import { appOnlyLine, isGraphAppOnly, permissionView, wantsPermissions } from "../src/permissions";
import type { Account, Permissions } from "../src/types";
// The engine's answers (src-tauri/src/fixtures.rs), never written by hand.
import accountGraph from "../e2e/fixtures/account-graph.json";
import accountSmtp from "../e2e/fixtures/account.json";
import partial from "../e2e/fixtures/permissions-graph.json";
import none from "../e2e/fixtures/permissions-graph-no-consent.json";

const graph = accountGraph as Account;
const smtp = accountSmtp as Account;

describe("the Graph app-only account", () => {
  it("names the app, the tenant and the mailbox it sends as", () => {
    expect(isGraphAppOnly(graph)).toBe(true);
    expect(appOnlyLine(graph)).toBe("Signed in as the app 00000000-1111-2222-3333-444444444444 for tenant contoso.com; sends as scanner@contoso.com");
    expect(wantsPermissions(graph)).toBe(true);
  });
  it("says nothing of an app when a person signs in, or nobody can yet", () => {
    expect(isGraphAppOnly(smtp)).toBe(false);
    expect(appOnlyLine(smtp)).toBeNull();
    expect(wantsPermissions(smtp)).toBe(false); // signed out: no token to read
    const needed = { ...graph, account: { state: "sign-in-needed", reason: "AADSTS7000215" } } as Account;
    expect(appOnlyLine(needed)).toBeNull();
    expect(wantsPermissions(needed)).toBe(false);
    expect(appOnlyLine({ ...graph, flow: "device-code" })).toBeNull();
  });
});

describe("granted permissions", () => {
  it("Mail.Send only: granted shown, Mail.ReadWrite missing with what fails", () => {
    const v = permissionView(partial as Permissions);
    expect(v.heading).toMatch(/granted to the app/);
    expect(v.granted).toEqual(["Mail.Send"]);
    expect(v.warnings.map((w) => w.permission)).toEqual(["Mail.ReadWrite"]);
    expect(v.warnings[0].text).toMatch(/^Mail.ReadWrite is not granted\. .*big scans/);
    expect(v.warnings[0].fix).toMatch(/Grant admin consent/);
  });
  it("no consent at all: Mail.Send first (nothing can be sent), then Mail.ReadWrite", () => {
    const v = permissionView(none as Permissions);
    expect(v.granted).toEqual([]);
    expect(v.warnings.map((w) => w.permission)).toEqual(["Mail.Send", "Mail.ReadWrite"]);
    expect(v.warnings[0].text).toMatch(/No mail can be sent/);
  });
  it("the answers hold no token", () => {
    for (const p of [partial, none]) expect(JSON.stringify(p)).not.toMatch(/eyJ|token"/);
  });
});
