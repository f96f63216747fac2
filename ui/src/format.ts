//! Pure formatting: sizes, times, countdowns and the plain-words line for a
//! reply. No DOM here, so all of it is unit-tested (test/format.test.ts).

export function formatSize(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "—";
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB"];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** "5 s", "3 min", "2 h 5 min", "1 d 4 h" — a duration for people. */
export function formatDuration(secs: number): string {
  if (!Number.isFinite(secs) || secs < 0) return "—";
  const s = Math.ceil(secs);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) { const r = s % 60; return r && m < 10 ? `${m} min ${r} s` : `${m} min`; }
  const h = Math.floor(m / 60);
  if (h < 24) { const r = m % 60; return r ? `${h} h ${r} min` : `${h} h`; }
  const d = Math.floor(h / 24);
  const r = h % 24;
  return r ? `${d} d ${r} h` : `${d} d`;
}

/** "just now", "2 min ago", "in 5 min" relative to `now` (both unix ms). */
export function formatRelative(at: number, now: number): string {
  const diff = (at - now) / 1000;
  if (Math.abs(diff) < 5) return "just now";
  const d = formatDuration(Math.abs(diff));
  return diff < 0 ? `${d} ago` : `in ${d}`;
}

/** Seconds left of a countdown that had `secs` left when it arrived at `arrivedAt`. */
export function countdownLeft(secs: number | null | undefined, arrivedAt: number, now: number): number | null {
  if (secs == null) return null;
  return Math.max(0, secs - (now - arrivedAt) / 1000);
}

/** "now" or "in 14 s" for the next-slot countdown. */
export function formatCountdown(left: number | null): string {
  if (left == null) return "—";
  if (left <= 0.5) return "now";
  return `in ${formatDuration(left)}`;
}

export function formatClock(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}`;
}

export function formatTime(ms: number, now: number): string {
  const d = new Date(ms);
  const n = new Date(now);
  const p = (x: number) => String(x).padStart(2, "0");
  const hm = `${p(d.getHours())}:${p(d.getMinutes())}`;
  if (d.toDateString() === n.toDateString()) return hm;
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${hm}`;
}

export function plural(n: number, one: string, many = one + "s"): string {
  return `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;
}

export interface Explanation { summary: string; fix: string }

/** The enhanced status code of a reply ("5.7.60"), or the basic one ("554"). */
export function replyCode(reply: string | null | undefined): string | null {
  if (!reply) return null;
  const enh = reply.match(/\b([245])\.(\d{1,3})\.(\d{1,3})\b/);
  if (enh) return `${enh[1]}.${enh[2]}.${enh[3]}`;
  const basic = reply.match(/^\s*([245]\d\d)\b/);
  return basic ? basic[1] : null;
}

/** Fallback wording by code, used only when the engine gave no summary/fix
 *  (the engine's classification in engine/src/delivery/classify.rs decides). */
const KNOWN: Record<string, Explanation> = {
  "5.7.60": { summary: "The mailbox is not allowed to send as this sender.", fix: "Grant the mailbox Send As on the sender, or resend as the mailbox (sender rewriting)." },
  "5.7.139": { summary: "SMTP AUTH is disabled for the tenant or mailbox.", fix: "Run Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false and check Security Defaults." },
  "5.7.30": { summary: "Basic authentication is retired for this tenant.", fix: "Switch upstream.auth to oauth and sign in." },
  "5.1.8": { summary: "The mailbox is blocked from sending.", fix: "Unblock it in the Microsoft 365 Defender portal (Restricted entities)." },
  "5.1.10": { summary: "The recipient does not exist.", fix: "Check the recipient's address." },
  "5.3.4": { summary: "The message is too big for Exchange Online.", fix: "Scan at a lower resolution or split the document." },
  "5.2.0": { summary: "The mailbox's daily sending quota is used up.", fix: "Nothing to do: Postern waits and sends when the quota frees." },
  "5.7.64": { summary: "The connector did not recognise this relay.", fix: "Check the connector's certificate or IP address in the Exchange admin center." },
  "5.7.3": { summary: "Microsoft refused the sign-in.", fix: "Sign in again on the Account page." },
  "4.3.2": { summary: "Too many connections to Microsoft.", fix: "Nothing to do: Postern backs off and retries." },
};

export function explainReply(reply: string | null | undefined, summary?: string | null, fix?: string | null): Explanation | null {
  if (summary) return { summary, fix: fix ?? "" };
  const code = replyCode(reply);
  if (!code) return null;
  if (KNOWN[code]) return KNOWN[code];
  if (code.startsWith("4")) return { summary: "Microsoft answered with a temporary error.", fix: "Nothing to do: Postern tries again by itself." };
  if (code.startsWith("5")) return { summary: "Microsoft refused the message.", fix: "Read the reply below; the fix depends on its code." };
  return null;
}
