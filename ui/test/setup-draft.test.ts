import { describe, expect, it } from "vitest";
import { applyChoice, choiceFor, fieldsFor, requiredErrors, type Choice } from "../src/setup/draft";
import { microsoftSteps } from "../src/setup/microsoft";
import { recommend, type Answers } from "../src/setup/recommend";
import { cardText, loginAdvice, networksToAllow, securityAdvice } from "../src/setup/device-card";
import { testOutcome } from "../src/setup/step-verify";
import type { ConfigForm, DeviceCard } from "../src/types";
import { validateConfig } from "../src/validate";

/** What a hand-written config for the README's "typical office" holds, as JSON. */
const readme = (): ConfigForm => ({
  listener: { listen: ["0.0.0.0:2525"], allow: ["192.168.1.0/24"] },
  upstream: { mailbox: "scanner@contoso.com" },
  oauth: { tenant: "contoso.com", client_id: "00000000-1111-2222-3333-444444444444", flow: "client-credentials" },
});
const submission: Answers = { external: true, mailbox: true, connector: "no", smtpAuth: true };

describe("applyChoice: only the keys the route needs", () => {
  it("re-running the assistant on the README's config changes nothing but spelling out mode and auth", () => {
    const c = readme();
    const choice = choiceFor("submission", recommend(submission), submission, c);
    expect(choice).toEqual({ mode: "submission", signIn: "client-credentials", connectorAuth: null });
    const out = applyChoice(c, choice);
    expect(out).toEqual({ ...readme(), upstream: { mailbox: "scanner@contoso.com", mode: "submission", auth: "oauth" } });
    expect(c).toEqual(readme()); // the input is not modified
  });

  it("on a first start (no app registration yet) suggests app-only, not the default flow", () => {
    const c: ConfigForm = { upstream: { mode: "submission", auth: "oauth" }, oauth: { flow: "interactive", client_id: "" } };
    expect(choiceFor("submission", recommend(submission), submission, c).signIn).toBe("client-credentials");
  });

  it("keeps the sign-in flow the config already uses", () => {
    const c = readme(); c.oauth.flow = "device-code";
    expect(choiceFor("submission", recommend(submission), submission, c).signIn).toBe("device-code");
    c.upstream.auth = "password";
    expect(choiceFor("submission", recommend(submission), submission, c).signIn).toBe("password");
  });

  it("switching to a relay drops the submission host and port and signs in with nothing", () => {
    const c = readme(); c.upstream.host = "smtp.office365.com"; c.upstream.port = 587;
    const a: Answers = { external: true, mailbox: false, connector: "ip", smtpAuth: false };
    const out = applyChoice(c, choiceFor("relay", recommend(a), a, c));
    expect(out.upstream).toEqual({ mailbox: "scanner@contoso.com", mode: "relay", auth: "none", domain: "contoso.com" });
    expect(out.listener).toEqual(readme().listener);
    expect(out.oauth).toEqual(readme().oauth); // untouched: a hand-written file may keep it
    expect(validateConfig(out)).toEqual([]);
  });

  it("back from a certificate relay to submission removes the relay's keys", () => {
    const relay: ConfigForm = { upstream: { mode: "relay", auth: "none", domain: "contoso.com", client_cert: "/c.pem", client_key: "/k.pem", port: 25 } };
    const choice: Choice = { mode: "submission", signIn: "interactive", connectorAuth: null };
    const out = applyChoice(relay, choice);
    expect(out.upstream).toEqual({ mode: "submission", auth: "oauth" });
    expect(out.oauth).toEqual({ flow: "interactive" });
  });

  it("Direct Send keeps accepted domains, a relay by IP does not keep a certificate", () => {
    const ds = applyChoice({ upstream: { mode: "direct-send", auth: "none", domain: "contoso.com", accepted_domains: ["contoso.com", "fabrikam.com"] } }, { mode: "direct-send", signIn: null, connectorAuth: null });
    expect(ds.upstream.accepted_domains).toEqual(["contoso.com", "fabrikam.com"]);
    const ip = applyChoice({ upstream: { mode: "relay", auth: "none", domain: "contoso.com", client_cert: "/c.pem", client_key: "/k.pem" } }, { mode: "relay", signIn: null, connectorAuth: "ip" });
    expect(ip.upstream).toEqual({ mode: "relay", auth: "none", domain: "contoso.com" });
  });
});

describe("fields and the route's own rules", () => {
  it("Graph: writes mode graph, client-credentials and the default endpoint, drops the SMTP routes' keys", () => {
    const graphAnswers: Answers = { external: true, mailbox: true, connector: "no", smtpAuth: false };
    const c: ConfigForm = { ...readme(), upstream: { mailbox: "scanner@contoso.com", mode: "direct-send", auth: "none", domain: "contoso.com", accepted_domains: ["contoso.com"], host: "x.mail.protection.outlook.com" } };
    c.oauth.flow = "interactive";
    const r = recommend(graphAnswers);
    expect(r.mode).toBe("graph");
    const choice = choiceFor("graph", r, graphAnswers, c);
    expect(choice).toEqual({ mode: "graph", signIn: "client-credentials", connectorAuth: null });
    const out = applyChoice(c, choice);
    expect(out.upstream).toEqual({ mailbox: "scanner@contoso.com", mode: "graph", auth: "oauth" });
    expect(out.oauth.flow).toBe("client-credentials");
    expect(out.graph).toEqual({ endpoint: "https://graph.microsoft.com" });
    expect(validateConfig(out)).toEqual([]);
    // An endpoint already set is kept; leaving Graph removes its section.
    const kept = applyChoice({ ...out, graph: { endpoint: "https://graph.microsoft.us", save_to_sent_items: false } }, choice);
    expect(kept.graph).toEqual({ endpoint: "https://graph.microsoft.us", save_to_sent_items: false });
    const back = applyChoice(kept, choiceFor("submission", recommend(submission), submission, kept));
    expect(back.graph).toBeUndefined();
    expect(back.upstream.mode).toBe("submission");
  });

  it("Graph needs mailbox, tenant and client id (a real tenant), and shows the Entra steps and the RBAC lines", () => {
    const choice: Choice = { mode: "graph", signIn: "client-credentials", connectorAuth: null };
    expect(fieldsFor(choice).map((f) => f.key)).toEqual(["upstream.mailbox", "oauth.tenant", "oauth.client_id", "extra.sp_object_id"]);
    const empty = applyChoice({}, choice);
    expect(requiredErrors(empty, choice).map((e) => e.key)).toEqual(["upstream.mailbox", "oauth.tenant", "oauth.client_id"]);
    const c = applyChoice(readme(), choice);
    c.oauth.tenant = "common";
    expect(requiredErrors(c, choice).map((e) => e.message).join()).toMatch(/needs your own tenant/);
    const steps = microsoftSteps(choice, readme(), { "extra.sp_object_id": "6a1b" });
    const all = steps.map((s) => s.title + " " + s.text.join(" ") + " " + (s.code ?? "")).join("\n");
    expect(all).toMatch(/App registrations → New registration/);
    expect(all).toMatch(/Microsoft Graph → Application permissions → Mail\.Send and Mail\.ReadWrite/);
    expect(all).toMatch(/over about 3 MB/);
    expect(all).toMatch(/Grant admin consent/);
    expect(all).toMatch(/New client secret/);
    expect(all).not.toMatch(/SMTP AUTH|SMTP\.SendAsApp|Set-CASMailbox/);
    const rbac = steps.find((s) => /Optional/.test(s.title))!;
    expect(rbac.code).toBe([
      "Connect-ExchangeOnline",
      'New-ServicePrincipal -AppId 00000000-1111-2222-3333-444444444444 -ObjectId 6a1b -DisplayName "Postern"',
      'New-ManagementScope -Name "Postern mailboxes" -RecipientRestrictionFilter "PrimarySmtpAddress -eq \'scanner@contoso.com\'"',
      'New-ManagementRoleAssignment -App 00000000-1111-2222-3333-444444444444 -Role "Application Mail.Send" -CustomResourceScope "Postern mailboxes"',
      'New-ManagementRoleAssignment -App 00000000-1111-2222-3333-444444444444 -Role "Application Mail.ReadWrite" -CustomResourceScope "Postern mailboxes"',
      "Test-ServicePrincipalAuthorization -Identity 00000000-1111-2222-3333-444444444444 -Resource scanner@contoso.com",
    ].join("\n"));
  });

  it("app-only submission needs mailbox, tenant, client id, and a real tenant", () => {
    const choice: Choice = { mode: "submission", signIn: "client-credentials", connectorAuth: null };
    expect(fieldsFor(choice).map((f) => f.key)).toEqual(["upstream.mailbox", "oauth.tenant", "oauth.client_id", "extra.sp_object_id"]);
    expect(requiredErrors({}, choice).map((e) => e.key)).toEqual(["upstream.mailbox", "oauth.tenant", "oauth.client_id"]);
    expect(requiredErrors({ ...readme(), oauth: { ...readme().oauth, tenant: "organizations" } }, choice).map((e) => e.key)).toEqual(["oauth.tenant"]);
    expect(requiredErrors(readme(), choice)).toEqual([]);
  });

  it("a certificate relay needs both PEM files; the password route only the mailbox", () => {
    expect(requiredErrors({ upstream: { domain: "contoso.com" } }, { mode: "relay", signIn: null, connectorAuth: "cert" }).map((e) => e.key)).toEqual(["upstream.client_cert", "upstream.client_key"]);
    expect(fieldsFor({ mode: "submission", signIn: "password", connectorAuth: null }).map((f) => f.key)).toEqual(["upstream.mailbox"]);
  });
});

describe("the Microsoft side", () => {
  it("fills the README's PowerShell lines with what was typed", () => {
    const steps = microsoftSteps({ mode: "submission", signIn: "client-credentials", connectorAuth: null }, readme(), { "extra.sp_object_id": "abc-123" });
    const code = steps.map((s) => s.code ?? "").join("\n");
    expect(code).toContain("New-ServicePrincipal -AppId 00000000-1111-2222-3333-444444444444 -ObjectId abc-123");
    expect(code).toContain("Add-MailboxPermission -Identity scanner@contoso.com -User abc-123 -AccessRights FullAccess");
    expect(code).toContain("Set-CASMailbox -Identity scanner@contoso.com -SmtpClientAuthenticationDisabled $false");
    expect(steps.map((s) => s.text.join(" ")).join(" ")).toMatch(/SMTP\.SendAsApp.*Grant admin consent/);
  });

  it("delegated flows get the redirect URI and SMTP.Send; the IP relay gets its connector and SPF", () => {
    const d = microsoftSteps({ mode: "submission", signIn: "device-code", connectorAuth: null }, readme(), {});
    expect(d.map((s) => s.code).filter(Boolean)).toContain("http://localhost");
    expect(d.map((s) => s.text.join(" ")).join(" ")).toMatch(/Allow public client flows.*Delegated permissions → SMTP\.Send/s);
    const r = microsoftSteps({ mode: "relay", signIn: null, connectorAuth: "ip" }, { upstream: { domain: "contoso.com" } }, { "extra.public_ip": "198.51.100.4" });
    const code = r.map((s) => s.code ?? "").join("\n");
    expect(code).toContain("-SenderIPAddresses 198.51.100.4 -RestrictDomainsToIPAddresses $true");
    expect(code).toContain("v=spf1 ip4:198.51.100.4 include:spf.protection.outlook.com -all");
  });
});

describe("the device card's words", () => {
  const card = (over: Partial<DeviceCard> = {}): DeviceCard => ({
    addresses: [{ interface: "eth0", address: "192.168.1.23", network: "192.168.1.0/24" }], port: 2525, lan: false, starttls: true, tls_ports: [],
    login_needed: false, users: [], allow: ["127.0.0.0/8", "::1/128"], hostname: "office-pc", ...over,
  });

  it("a fresh install listens on this PC only: every network is offered, login is explained", () => {
    expect(networksToAllow(card())).toEqual(["192.168.1.0/24"]);
    expect(loginAdvice(card())).toMatch(/not allowed yet/);
    expect(networksToAllow(card({ lan: true, allow: ["192.168.1.0/24"] }))).toEqual([]);
    expect(loginAdvice(card({ lan: true, allow: ["127.0.0.0/8", "192.168.1.0/24"] }))).toBe("No, for devices on 192.168.1.0/24. Any other device must log in as a device user (none set up yet: Settings → Device users).");
    expect(loginAdvice(card({ login_needed: true, users: ["scanner"] }))).toMatch(/^Yes: every device logs in as a device user \(scanner\)/);
  });

  it("security: STARTTLS or none, implicit TLS on its own port", () => {
    expect(securityAdvice(card()).choice).toBe('STARTTLS on port 2525; "None" works too');
    expect(securityAdvice(card({ tls_ports: [465] })).choice).toBe('STARTTLS on port 2525 or SSL/TLS on port 465; "None" works too');
    expect(securityAdvice(card({ starttls: false })).choice).toBe("None on port 2525");
    expect(cardText(card())).toMatch(/^Point a device at Postern.*\nSMTP server: 192\.168\.1\.23 \(or the PC's name: office-pc\)\nPort: 2525\n/s);
  });
});

describe("the test message's outcome", () => {
  it("follows only its own id", () => {
    expect(testOutcome({ event: "sent", id: "B", reply: "250 OK" }, "A")).toBeNull();
    expect(testOutcome({ event: "sent", id: "A", reply: "250 2.0.0 OK" }, "A")).toEqual({ kind: "sent", text: "Delivered to Microsoft: 250 2.0.0 OK" });
    expect(testOutcome({ event: "failed", id: "A", recipients: ["x@y"], reply: "550 5.7.60", summary: "May not send as x.", fix: "Grant Send As." }, "A")).toEqual({ kind: "failed", text: "May not send as x.", fix: "Grant Send As." });
    expect(testOutcome({ event: "deferred", id: "A", reason: "451 4.7.500 Server busy.", next_attempt_unix: Date.now() + 60_000 }, "A")?.kind).toBe("deferred");
    expect(testOutcome({ event: "attention-cleared" }, "A")).toBeNull();
  });
});
