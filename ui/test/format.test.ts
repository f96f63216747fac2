import { describe, expect, it } from "vitest";
import { countdownLeft, explainReply, formatCountdown, formatDuration, formatRelative, formatSize, replyCode } from "../src/format";

describe("formatSize", () => {
  it.each([
    [0, "0 B"], [512, "512 B"], [1024, "1.0 KB"], [1536, "1.5 KB"], [20 * 1024, "20 KB"],
    [36700160, "35 MB"], [5 * 1024 ** 3, "5.0 GB"], [-1, "—"], [NaN, "—"],
  ])("%s bytes → %s", (n, want) => expect(formatSize(n)).toBe(want));
});

describe("formatDuration / formatRelative", () => {
  it.each([
    [0, "0 s"], [14.2, "15 s"], [59, "59 s"], [60, "1 min"], [90, "1 min 30 s"], [600, "10 min"],
    [3600, "1 h"], [3900, "1 h 5 min"], [86400, "1 d"], [90000, "1 d 1 h"], [-1, "—"],
  ])("%s s → %s", (s, want) => expect(formatDuration(s)).toBe(want));
  const now = 1_700_000_000_000;
  it("past, future and now", () => {
    expect(formatRelative(now - 120_000, now)).toBe("2 min ago");
    expect(formatRelative(now + 300_000, now)).toBe("in 5 min");
    expect(formatRelative(now + 2000, now)).toBe("just now");
  });
});

describe("countdowns from the last status", () => {
  const at = 1_000_000;
  it("counts down on the local clock", () => {
    expect(countdownLeft(14, at, at)).toBe(14);
    expect(countdownLeft(14, at, at + 4000)).toBe(10);
    expect(countdownLeft(14, at, at + 20_000)).toBe(0);
    expect(countdownLeft(null, at, at)).toBeNull();
  });
  it("formats", () => {
    expect(formatCountdown(14)).toBe("in 14 s");
    expect(formatCountdown(0.2)).toBe("now");
    expect(formatCountdown(null)).toBe("—");
  });
});

describe("reply explanations", () => {
  it("extracts codes", () => {
    expect(replyCode("550 5.7.60 SMTP; Client does not have permissions to send as this sender")).toBe("5.7.60");
    expect(replyCode("421 Service not available")).toBe("421");
    expect(replyCode("connection reset")).toBeNull();
  });
  it("prefers the engine's own summary and fix", () => {
    expect(explainReply("550 5.7.60 x", "Engine says", "Do this")).toEqual({ summary: "Engine says", fix: "Do this" });
  });
  it.each([
    ["550 5.7.60 SMTP; Client does not have permissions", /send as/i],
    ["535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled", /SMTP AUTH/],
    ["550 5.1.10 RESOLVER.ADR.RecipientNotFound", /recipient/i],
    ["451 4.7.500 Server busy", /temporary/i],
    ["554 5.6.0 Corrupt message content", /refused/i],
  ])("%s", (reply, want) => expect(explainReply(reply)!.summary).toMatch(want));
  it("has nothing to say without a reply", () => expect(explainReply(null)).toBeNull());
});
