//! Client-side mirror of the config file's main rules
//! (engine/src/config/mod.rs `Config::validate`), so a bad value is explained
//! next to its field while typing. The engine stays the judge: the settings
//! page also calls `validate_settings` and shows its errors the same way.

import type { ConfigForm, FieldError } from "./types";

/** An IPv4 address in dotted-quad form, each part 0–255, no leading zeros. */
export function isIPv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
}

/** An IPv6 address (with :: compression, optional embedded IPv4 tail). */
export function isIPv6(s: string): boolean {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || s.includes(":::")) return false;
  const dbl = s.split("::");
  if (dbl.length > 2) return false;
  const groups = (part: string) => (part === "" ? [] : part.split(":"));
  const head = groups(dbl[0]);
  const tail = dbl.length === 2 ? groups(dbl[1]) : [];
  const all = [...head, ...tail];
  let count = 0;
  for (let i = 0; i < all.length; i++) {
    const g = all[i];
    if (i === all.length - 1 && g.includes(".")) {
      if (!isIPv4(g)) return false;
      count += 2;
    } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) count += 1;
    else return false;
  }
  return dbl.length === 2 ? count < 8 : count === 8;
}

export function cidrError(s: string): string | null {
  const v = s.trim();
  if (!v) return "empty network; write e.g. 192.168.1.0/24";
  const slash = v.indexOf("/");
  if (slash < 0) return `"${v}" has no prefix length; write e.g. ${isIPv6(v) ? v + "/128" : v + "/32"} for one address`;
  const ip = v.slice(0, slash);
  const len = v.slice(slash + 1);
  const v4 = isIPv4(ip);
  if (!v4 && !isIPv6(ip)) return `"${ip}" is not an IP address (in "${v}")`;
  if (!/^\d{1,3}$/.test(len)) return `"${len}" is not a prefix length (in "${v}")`;
  const max = v4 ? 32 : 128;
  if (Number(len) > max) return `prefix length /${len} is too long for ${v4 ? "IPv4" : "IPv6"} (at most /${max})`;
  return null;
}

/** A socket address as the config file wants it: IP:port or [IPv6]:port. */
export function socketAddrError(s: string): string | null {
  const v = s.trim();
  if (!v) return "empty address; write e.g. 0.0.0.0:2525";
  let host: string, port: string;
  if (v.startsWith("[")) {
    const m = v.match(/^\[([^\]]*)\]:(.*)$/);
    if (!m) return `"${v}" needs a port: [IPv6]:port, e.g. [::1]:2525`;
    [, host, port] = m;
    if (!isIPv6(host)) return `"${host}" is not an IPv6 address`;
  } else {
    const i = v.lastIndexOf(":");
    if (i < 0) return `"${v}" needs a port, e.g. ${v}:2525`;
    host = v.slice(0, i);
    port = v.slice(i + 1);
    if (host.includes(":")) return `write an IPv6 address in brackets, e.g. [${host}]:${port || 2525}`;
    if (!isIPv4(host)) return `"${host}" is not an IP address (listen addresses are IPs, e.g. 0.0.0.0 for every interface)`;
  }
  return portError(port);
}

export function portError(p: string | number): string | null {
  const s = String(p).trim();
  if (!/^\d+$/.test(s)) return `"${s}" is not a port number`;
  const n = Number(s);
  if (n < 1 || n > 65535) return `port ${s} is out of range (1–65535)`;
  return null;
}

/** The engine's light check: one @, something each side, no spaces or <>. */
export function emailError(s: string): string | null {
  const v = s;
  const at = v.lastIndexOf("@");
  if (at <= 0 || at === v.length - 1 || /\s/.test(v) || /[<>]/.test(v))
    return `"${v}" is not an email address (expected e.g. scanner@contoso.com)`;
  return null;
}

export function positiveIntError(v: unknown): string | null {
  const s = String(v ?? "").trim();
  if (!/^\d+$/.test(s)) return `"${s}" is not a whole number`;
  if (Number(s) < 1) return "must be at least 1";
  return null;
}

function isLoopbackHost(h: string): boolean {
  if (h === "localhost") return true;
  if (isIPv4(h)) return h.startsWith("127.");
  return h === "::1" || /^(0{1,4}:){7}0{0,3}1$/.test(h);
}

/** https only, except http on a loopback host (the test fakes). */
export function authorityError(a: string): string | null {
  const i = a.indexOf("://");
  if (i < 0) return `"${a}" is not a URL`;
  const scheme = a.slice(0, i);
  const rest = a.slice(i + 3);
  const host = rest.startsWith("[") ? rest.slice(1).split("]")[0] : rest.split(/[/:]/)[0];
  if (scheme === "https") return host ? null : `"${a}" has no host`;
  if (scheme === "http") return isLoopbackHost(host) ? null : `"${a}" must use https (plain http is allowed only for a loopback host)`;
  return `"${a}" must be an https URL`;
}

const UNIT_SECS: Record<string, number> = {
  ms: 0.001, msec: 0.001, s: 1, sec: 1, secs: 1, second: 1, seconds: 1, m: 60, min: 60, mins: 60, minute: 60, minutes: 60,
  h: 3600, hr: 3600, hrs: 3600, hour: 3600, hours: 3600, d: 86400, day: 86400, days: 86400, w: 604800, week: 604800, weeks: 604800,
};

/** Seconds in a humantime duration ("5m", "1h 30m", "2days"); null when
 *  this mirror does not read it (the engine then judges it alone). */
export function durationSecs(v: string): number | null {
  const parts = v.trim().split(/\s+/).filter(Boolean);
  if (!parts.length) return null;
  let total = 0;
  for (const p of parts) {
    const m = p.match(/^(\d+)([a-z]+)$/);
    if (!m || !(m[2] in UNIT_SECS)) return null;
    total += Number(m[1]) * UNIT_SECS[m[2]];
  }
  return total;
}

const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
const str = (v: unknown): string => (v == null ? "" : String(v));
const filled = (v: unknown) => v != null && String(v).trim() !== "";

/** Every rule the form mirrors; one error per key (the first found). */
export function validateConfig(c: ConfigForm): FieldError[] {
  const errs: FieldError[] = [];
  const bad = (key: string, message: string | null) => {
    if (message && !errs.some((e) => e.key === key)) errs.push({ key, message });
  };
  const l = c.listener ?? {}, u = c.upstream ?? {}, o = c.oauth ?? {}, lim = c.limits ?? {};

  const listen = list(l.listen), tlsListen = list(l.tls_listen);
  if (listen.length === 0 && tlsListen.length === 0)
    bad("listener.listen", 'no address to listen on; give at least one, e.g. "127.0.0.1:2525"');
  for (const a of listen) bad("listener.listen", socketAddrError(a));
  for (const a of tlsListen) bad("listener.tls_listen", socketAddrError(a));
  for (const n of list(l.allow)) bad("listener.allow", cidrError(n));
  for (const n of list(l.legacy_tls_allow)) bad("listener.legacy_tls_allow", cidrError(n));
  for (const k of ["max_message_bytes", "max_recipients", "max_connections"]) {
    if (k in l) bad(`listener.${k}`, positiveIntError(l[k]));
  }
  if ("max_message_bytes" in l && !positiveIntError(l.max_message_bytes) && Number(l.max_message_bytes) < 1024)
    bad("listener.max_message_bytes", `${l.max_message_bytes} bytes is too small for any message`);
  if (filled(l.tls_cert) !== filled(l.tls_key))
    bad(filled(l.tls_cert) ? "listener.tls_key" : "listener.tls_cert", "tls_cert and tls_key go together: set both, or neither to use a generated certificate");
  const users = list(l.users);
  if (l.require_auth && users.length === 0)
    bad("listener.users", "require_auth is on but no device users are listed; add a name here");
  for (const name of users) if (!name || /\s/.test(name)) bad("listener.users", `"${name}" is not a usable user name (no spaces, not empty)`);

  const mode = str(u.mode || "submission");
  // Submission and Graph sign in as the mailbox; relay and Direct Send do not.
  const signsIn = mode === "submission" || mode === "graph";
  if (filled(u.mailbox)) bad("upstream.mailbox", emailError(str(u.mailbox)));
  else if (signsIn) bad("upstream.mailbox", "the mailbox Postern sends as is required, e.g. scanner@contoso.com");
  if (filled(u.port) && mode !== "graph") bad("upstream.port", portError(str(u.port)));
  if (mode === "graph" && str(u.auth || "oauth") !== "oauth")
    bad("upstream.auth", 'Microsoft Graph signs in only with OAuth; choose "oauth"');
  // graph.endpoint is judged by the engine alone (validate_settings): its
  // URL rules (user names, paths, loopback hosts) are the url crate's.
  if (!signsIn) {
    const domain = str(u.domain) || (str(u.mailbox).split("@")[1] ?? "");
    if (!filled(u.host) && !domain) bad("upstream.domain", "relay and direct-send modes need your domain (its MX names the endpoint), or a host");
    if (str(u.auth || "oauth") !== "none") bad("upstream.auth", 'relay and direct-send modes do not sign in; choose "none"');
  }
  if (filled(o.authority)) bad("oauth.authority", authorityError(str(o.authority)));
  if ("tenant" in o && !filled(o.tenant)) bad("oauth.tenant", 'must not be empty; use "organizations", your domain, or the tenant id');
  // No client id yet is not an error (the engine starts, keeps the mail and
  // says what is missing), so the form stays saveable while it is filled in.
  for (const k of ["messages_per_minute", "recipients_per_day", "max_connections"]) {
    if (k in lim) bad(`limits.${k}`, positiveIntError(lim[k]));
  }
  const t = c.tracking ?? {};
  if ("poll" in t) {
    const secs = durationSecs(str(t.poll));
    if (!filled(t.poll)) bad("tracking.poll", 'must not be empty; write a duration such as "5m"');
    else if (secs != null && secs < 1) bad("tracking.poll", "must be at least 1s (Microsoft's trace changes over minutes; the default is 5m)");
  }
  if ("for" in t) {
    const secs = durationSecs(str(t.for));
    if (!filled(t.for)) bad("tracking.for", 'must not be empty; write a duration such as "48h"');
    else if (secs != null && (secs === 0 || secs > 10 * 86400)) bad("tracking.for", `must be between 1s and 10 days (one trace query covers at most 10 days), not ${str(t.for).trim()}`);
  }
  if (mode === "graph" && !positiveIntError(lim.max_connections) && Number(lim.max_connections) > 4)
    bad("limits.max_connections", "Microsoft Graph takes at most 4 requests at a time per mailbox; set it to 4 or less");
  return errs;
}
