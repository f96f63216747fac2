import { describe, expect, it } from "vitest";
import { authorityError, cidrError, emailError, isIPv6, portError, positiveIntError, socketAddrError, validateConfig, durationSecs } from "../src/validate";

describe("CIDR", () => {
  it.each(["192.168.1.0/24", "10.0.0.0/8", "0.0.0.0/0", "127.0.0.1/32", "::1/128", "fd00::/8", "2001:db8::/32", "::ffff:10.0.0.0/104"])("accepts %s", (v) => expect(cidrError(v)).toBeNull());
  it.each([
    ["192.168.1.0", /no prefix length/], ["192.168.1.0/33", /too long/], ["192.168.1/24", /not an IP/], ["300.1.1.1/8", /not an IP/],
    ["192.168.01.0/24", /not an IP/], ["10.0.0.0/x", /not a prefix/], ["::1/129", /too long/], ["fe80::1::2/64", /not an IP/],
    ["", /empty/], ["192.168.1.0/24; rm -rf /", /not a prefix/], ["host.example/24", /not an IP/],
  ])("rejects %s", (v, want) => expect(cidrError(v)).toMatch(want));
});

describe("IPv6", () => {
  it.each([["::", true], ["::1", true], ["1:2:3:4:5:6:7:8", true], ["1:2:3:4:5:6:7:8:9", false], ["12345::", false], ["1:::2", false]])("%s → %s", (v, ok) => expect(isIPv6(v)).toBe(ok));
});

describe("listen addresses and ports", () => {
  it.each(["127.0.0.1:2525", "0.0.0.0:25", "[::1]:2525", "[::]:587"])("accepts %s", (v) => expect(socketAddrError(v)).toBeNull());
  it.each([
    ["127.0.0.1", /needs a port/], ["127.0.0.1:0", /out of range/], ["127.0.0.1:65536", /out of range/], ["127.0.0.1:http", /not a port/],
    ["localhost:2525", /not an IP/], ["::1:2525", /brackets/], ["[::1]", /needs a port/], ["[zz::1]:25", /not an IPv6/], ["", /empty/],
  ])("rejects %s", (v, want) => expect(socketAddrError(v)).toMatch(want));
  it("ports", () => { expect(portError(587)).toBeNull(); expect(portError("-1")).toMatch(/not a port/); expect(portError(70000)).toMatch(/range/); });
});

describe("addresses, numbers, authority", () => {
  it.each(["scanner@contoso.com", "a.b+c@sub.contoso.co.uk"])("email ok %s", (v) => expect(emailError(v)).toBeNull());
  it.each(["scanner", "@contoso.com", "scanner@", "scan ner@contoso.com", "<scanner@contoso.com>"])("email bad %s", (v) => expect(emailError(v)).toMatch(/not an email address/));
  it.each([[1, null], ["30", null], [0, /at least 1/], ["-3", /whole number/], ["2.5", /whole number/], ["", /whole number/]])("number %s", (v, want) => {
    const e = positiveIntError(v);
    if (want === null) expect(e).toBeNull(); else expect(e).toMatch(want);
  });
  it.each([["https://login.microsoftonline.com", null], ["http://127.0.0.1:8080", null], ["http://localhost/x", null], ["http://[::1]:9000", null],
    ["http://login.microsoftonline.com", /must use https/], ["ftp://x", /https URL/], ["login.microsoftonline.com", /not a URL/]])("authority %s", (v, want) => {
    const e = authorityError(v);
    if (want === null) expect(e).toBeNull(); else expect(e).toMatch(want as RegExp);
  });
});

describe("validateConfig", () => {
  const good = () => ({
    listener: { listen: ["0.0.0.0:2525"], allow: ["192.168.1.0/24"], require_auth: false, users: [], max_message_bytes: 36700160, max_recipients: 500, max_connections: 100, tls_cert: null, tls_key: null },
    upstream: { mode: "submission", host: "", port: 587, mailbox: "scanner@contoso.com", auth: "oauth", rewrite_sender: false, domain: "" },
    oauth: { authority: "https://login.microsoftonline.com", tenant: "contoso.com", client_id: "abc", flow: "interactive" },
    limits: { messages_per_minute: 30, recipients_per_day: 10000, max_connections: 3 },
  });
  it("a good config has no errors", () => expect(validateConfig(good())).toEqual([]));
  const keys = (c: ReturnType<typeof good>) => validateConfig(c).map((e) => e.key);
  it("names the key of each bad value", () => {
    const c = good();
    c.listener.allow = ["192.168.1.0/24", "10.0.0.0/40"];
    c.listener.listen = [];
    c.upstream.mailbox = "scanner";
    c.limits.messages_per_minute = 0;
    c.oauth.authority = "http://login.example.com";
    expect(keys(c).sort()).toEqual(["limits.messages_per_minute", "listener.allow", "listener.listen", "oauth.authority", "upstream.mailbox"]);
  });
  it("cross-field rules", () => {
    const c = good() as any;
    c.listener.require_auth = true;
    c.listener.tls_cert = "/etc/postern/cert.pem";
    c.upstream.mode = "relay";
    expect(keys(c).sort()).toEqual(["listener.tls_key", "listener.users", "upstream.auth"]);
  });
  it("Graph mode signs in as the mailbox with OAuth, needs no domain, ignores the SMTP port, allows 4 requests", () => {
    const c = good() as any;
    c.upstream.mode = "graph";
    c.upstream.port = null;
    c.oauth.flow = "client-credentials";
    c.graph = { endpoint: "https://graph.microsoft.com", save_to_sent_items: true };
    expect(keys(c)).toEqual([]);
    c.limits.max_connections = 4;
    expect(keys(c)).toEqual([]);
    c.limits.max_connections = 5;
    c.upstream.auth = "password";
    c.upstream.mailbox = "";
    expect(keys(c).sort()).toEqual(["limits.max_connections", "upstream.auth", "upstream.mailbox"]);
  });
  it("legacy TLS networks must be CIDRs (containment is the engine's check)", () => {
    const c = good() as any;
    c.listener.legacy_tls = true;
    c.listener.legacy_tls_allow = ["192.168.1.40/32"];
    expect(keys(c)).toEqual([]);
    c.listener.legacy_tls_allow = ["192.168.1.40/33"];
    expect(keys(c)).toEqual(["listener.legacy_tls_allow"]);
  });
});

import firstStart from "../e2e/fixtures/settings-first-start.json";
import engineFirstStart from "../e2e/fixtures/validate-first-start.json";
import readme from "../e2e/fixtures/settings.json";
import engineGraphBad from "../e2e/fixtures/validate-graph-bad.json";
import type { ConfigForm } from "../src/types";

describe("validateConfig agrees with the engine (fixtures from the real engine)", () => {
  it("the first start's config (no file) is saveable once the mailbox is set, as the engine says", () => {
    const c = structuredClone(firstStart.config) as ConfigForm;
    expect(c.upstream.port).toBeNull();
    expect(c.upstream.auth).toBe("oauth");
    expect(validateConfig(c).map((e) => e.key)).toEqual(["upstream.mailbox"]);
    c.upstream.mailbox = "scanner@contoso.com";
    expect(validateConfig(c)).toEqual([]);
    expect(engineFirstStart).toEqual({ ok: true, errors: [] });
  });
  it("Graph's endpoint is the engine's to judge: http://example.com passes here and the engine names graph.endpoint", () => {
    const c = structuredClone(firstStart.config) as ConfigForm;
    c.upstream.mailbox = "scanner@contoso.com";
    c.upstream.mode = "graph";
    c.graph.endpoint = "http://example.com";
    expect(validateConfig(c)).toEqual([]);
    expect(engineGraphBad.ok).toBe(false);
    expect(engineGraphBad.errors.map((e) => e.key)).toEqual(["graph.endpoint"]);
    expect(engineGraphBad.errors[0].message).toMatch(/must use https/);
  });
  it("the README's example config, as the engine reads it, is saveable as is", () => {
    expect(validateConfig(readme.config as ConfigForm)).toEqual([]);
  });
});

describe("tracking durations", () => {
  const base = () => ({ listener: { listen: ["127.0.0.1:2525"] }, upstream: { mailbox: "scanner@contoso.com" }, tracking: { enabled: true, poll: "5m", for: "48h" } });
  const keys = (c: ReturnType<typeof base>) => validateConfig(c).map((e) => e.key);
  it("reads humantime durations", () => {
    expect(durationSecs("5m")).toBe(300);
    expect(durationSecs("1h 30m")).toBe(5400);
    expect(durationSecs("10days")).toBe(864000);
    expect(durationSecs("soon")).toBeNull();
  });
  it("mirrors the engine's bounds: poll at least 1s, for between 1s and 10 days", () => {
    expect(keys(base())).toEqual([]);
    const c = base(); c.tracking.poll = "500ms"; expect(keys(c)).toEqual(["tracking.poll"]);
    const d = base(); d.tracking.for = "11d"; expect(validateConfig(d)[0]).toMatchObject({ key: "tracking.for", message: expect.stringContaining("10 days") });
    const z = base(); z.tracking.for = "0s"; expect(keys(z)).toEqual(["tracking.for"]);
  });
});
