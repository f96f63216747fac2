// Every combination of the setup assistant's four answers (2 × 2 × 3 × 2 =
// 24), each with the route Microsoft's comparison gives
// (docs/exchange-online.md §1) and what its reason must say. Written out
// by hand, not computed: used by test/recommend.test.ts (the pure function)
// and e2e/setup.spec.mjs (the same answers clicked on the real page).
//
// columns: external, mailbox, connector, smtpAuth → mode, reasonId, reason says
export const CASES = [
  // outside recipients, a licensed mailbox
  [true, true, "ip", true, "submission", "submission", /licensed mailbox and SMTP AUTH is allowed/],
  [true, true, "ip", false, "relay", "relay-no-smtp-auth", /Without SMTP AUTH.*static public IP/],
  [true, true, "cert", true, "submission", "submission", /licensed mailbox and SMTP AUTH is allowed/],
  [true, true, "cert", false, "relay", "relay-no-smtp-auth", /Without SMTP AUTH.*certificate/],
  [true, true, "no", true, "submission", "submission", /licensed mailbox and SMTP AUTH is allowed/],
  [true, true, "no", false, "graph", "graph-no-smtp-auth", /SMTP AUTH off.*no connector leave Microsoft Graph.*works with Security Defaults on/],
  // outside recipients, no licensed mailbox
  [true, false, "ip", true, "relay", "relay-no-mailbox", /Without a licensed mailbox.*static public IP/],
  [true, false, "ip", false, "relay", "relay-no-mailbox", /Without a licensed mailbox.*static public IP/],
  [true, false, "cert", true, "relay", "relay-no-mailbox", /Without a licensed mailbox.*certificate/],
  [true, false, "cert", false, "relay", "relay-no-mailbox", /Without a licensed mailbox.*certificate/],
  [true, false, "no", true, "graph", "graph-no-mailbox", /no licensed mailbox and no connector leave Microsoft Graph.*shared mailbox/],
  [true, false, "no", false, "graph", "graph-no-mailbox", /no licensed mailbox and no connector leave Microsoft Graph.*shared mailbox/],
  // only internal recipients, a licensed mailbox
  [false, true, "ip", true, "submission", "submission", /licensed mailbox and SMTP AUTH is allowed/],
  [false, true, "ip", false, "relay", "relay-no-smtp-auth", /Without SMTP AUTH.*static public IP/],
  [false, true, "cert", true, "submission", "submission", /licensed mailbox and SMTP AUTH is allowed/],
  [false, true, "cert", false, "relay", "relay-no-smtp-auth", /Without SMTP AUTH.*certificate/],
  [false, true, "no", true, "submission", "submission", /licensed mailbox and SMTP AUTH is allowed/],
  [false, true, "no", false, "direct-send", "direct-send-internal", /All recipients are inside.*without SMTP AUTH or a connector, Direct Send/],
  // only internal recipients, no licensed mailbox
  [false, false, "ip", true, "relay", "relay-no-mailbox", /Without a licensed mailbox.*static public IP/],
  [false, false, "ip", false, "relay", "relay-no-mailbox", /Without a licensed mailbox.*static public IP/],
  [false, false, "cert", true, "relay", "relay-no-mailbox", /Without a licensed mailbox.*certificate/],
  [false, false, "cert", false, "relay", "relay-no-mailbox", /Without a licensed mailbox.*certificate/],
  [false, false, "no", true, "direct-send", "direct-send-internal", /All recipients are inside.*without a licensed mailbox or a connector, Direct Send/],
  [false, false, "no", false, "direct-send", "direct-send-internal", /All recipients are inside.*without a licensed mailbox or a connector, Direct Send/],
].map(([external, mailbox, connector, smtpAuth, mode, reasonId, says]) => ({ answers: { external, mailbox, connector, smtpAuth }, mode, reasonId, says }));
