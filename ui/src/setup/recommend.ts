//! The setup assistant's first question, "How should Postern send?", as a
//! pure function: the admin's four answers → the route Microsoft's own
//! comparison gives (docs/exchange-online.md §1, "Which way for which
//! office"), with its one-sentence reason, the trade-offs and warnings.
//! No DOM and no IPC here, so every combination of answers is tested.
//!
//! Microsoft's guidance in short: client submission if there is a licensed
//! mailbox and SMTP AUTH is allowed; a connector relay when there is no
//! such mailbox (or for high volume), with a static IP or a certificate;
//! Direct Send only for internal recipients. Microsoft Graph is the route
//! for applications where SMTP AUTH is off (Security Defaults on): it
//! sends over HTTPS with an app registration, see `recommend`.

export type Connector = "ip" | "cert" | "no";

export interface Answers {
  /** Do recipients include people outside the organisation? */
  external: boolean;
  /** Is there a licensed mailbox for the device (or app) to send as? */
  mailbox: boolean;
  /** Does the office have a static public IP, or a certificate, for a connector? */
  connector: Connector;
  /** Is SMTP AUTH allowed in the tenant? (Security Defaults on means no.) */
  smtpAuth: boolean;
}

/** The routes Postern speaks (`upstream.mode`). */
export type Mode = "submission" | "relay" | "direct-send" | "graph";
/** Every route of the choice (the same as the modes). */
export type Route = Mode;

export type ReasonId = "submission" | "relay-no-mailbox" | "relay-no-smtp-auth" | "direct-send-internal" | "graph-no-smtp-auth" | "graph-no-mailbox";

export type Topic = "external" | "sent-items" | "limits" | "anti-spam";
export interface Tradeoff { topic: Topic; good: boolean; text: string }

export interface Recommendation {
  mode: Mode;
  /** `upstream.auth` this route uses. */
  auth: "oauth" | "none";
  /** Suggested `oauth.flow` (submission and Graph). */
  flow: "client-credentials" | null;
  /** How the connector trusts Postern (relay only). */
  connectorAuth: "ip" | "cert" | null;
  reasonId: ReasonId;
  /** One sentence: why this route. */
  reason: string;
  tradeoffs: Tradeoff[];
  warnings: string[];
}

export const TOPIC_TITLE: Record<Topic, string> = {
  external: "Outside recipients", "sent-items": "Sent Items", limits: "Limits", "anti-spam": "Anti-spam",
};

export const ROUTE_TITLE: Record<Route, string> = {
  submission: "Client submission (sign in to smtp.office365.com:587)",
  relay: "SMTP relay through a connector (port 25)",
  "direct-send": "Direct Send (port 25, no sign-in)",
  graph: "Microsoft Graph",
};

/** The trade-offs of each route, straight from Microsoft's comparison table. */
export function tradeoffs(mode: Mode): Tradeoff[] {
  switch (mode) {
    case "submission": return [
      { topic: "external", good: true, text: "Reaches anyone, inside or outside the organisation." },
      { topic: "sent-items", good: true, text: "A copy of every message is saved in the mailbox's Sent Items." },
      { topic: "limits", good: false, text: "Microsoft's per-mailbox limits: 30 messages a minute and 10,000 recipients a day (Postern paces itself to stay inside them)." },
      { topic: "anti-spam", good: true, text: "Mail to your own people bypasses anti-spam." },
    ];
    case "relay": return [
      { topic: "external", good: true, text: "Reaches anyone, inside or outside the organisation." },
      { topic: "sent-items", good: false, text: "Nothing is saved in Sent Items." },
      { topic: "limits", good: true, text: "No per-mailbox limit; Microsoft applies \"reasonable\" limits." },
      { topic: "anti-spam", good: false, text: "Every message passes anti-spam; your domain's SPF must name the office's public IP." },
    ];
    case "direct-send": return [
      { topic: "external", good: false, text: "Only recipients in your own (accepted) domains: mail to anyone outside is refused." },
      { topic: "sent-items", good: false, text: "Nothing is saved in Sent Items." },
      { topic: "limits", good: false, text: "Throttled like any anonymous sender on the internet." },
      { topic: "anti-spam", good: false, text: "Filtered like mail from the internet: SPF, DKIM and DMARC must pass, or mail may land in Junk." },
    ];
    case "graph": return [
      { topic: "external", good: true, text: "Reaches anyone, inside or outside the organisation." },
      { topic: "sent-items", good: true, text: "A copy of every message is saved in the mailbox's Sent Items (graph.save_to_sent_items turns it off)." },
      { topic: "limits", good: false, text: "Microsoft's per-mailbox limits: 10,000 recipients a day and 4 requests at a time (Postern paces itself to stay inside them)." },
      { topic: "anti-spam", good: true, text: "Mail to your own people bypasses anti-spam." },
    ];
  }
}

const CONNECTOR_WORDS: Record<"ip" | "cert", string> = { ip: "the office's static public IP", cert: "your certificate" };

/**
 * The route for these answers.
 *
 * 1. A licensed mailbox and SMTP AUTH allowed → client submission, whatever
 *    the rest (Microsoft's first choice; a connector is only mentioned as the
 *    way past the per-mailbox limits).
 * 2. Otherwise, a static IP or a certificate → a connector relay: it reaches
 *    outside recipients without a mailbox or SMTP AUTH (Graph is named as
 *    the alternative without port 25 or SPF when there is a mailbox).
 * 3. Otherwise, internal recipients only → Direct Send: nothing to register
 *    (Graph is named as the alternative that also reaches outside).
 * 4. Otherwise (outside recipients, no SMTP sign-in, no connector) →
 *    Microsoft Graph: it works with Security Defaults on (SMTP AUTH stays
 *    off) and needs only a mailbox to send from — a shared one, which needs
 *    no licence, is enough — and an app registration with Mail.Send
 *    (Mail.ReadWrite for scans over about 3 MB) and admin consent.
 */
export function recommend(a: Answers): Recommendation {
  const base = { auth: "none" as const, flow: null, connectorAuth: null };
  if (a.mailbox && a.smtpAuth) {
    const warnings = [
      "SMTP AUTH must be allowed for this mailbox too (Set-CASMailbox … -SmtpClientAuthenticationDisabled $false, shown in the next step).",
    ];
    if (a.connector !== "no")
      warnings.push(`If the office sends to more than 10,000 recipients a day, a connector relay with ${CONNECTOR_WORDS[a.connector]} has no per-mailbox limit (choose it below).`);
    return {
      ...base, mode: "submission", auth: "oauth", flow: "client-credentials", reasonId: "submission",
      reason: "There is a licensed mailbox and SMTP AUTH is allowed, so Postern can sign in as that mailbox — Microsoft's first choice, reaching anyone with a copy in Sent Items.",
      tradeoffs: tradeoffs("submission"), warnings,
    };
  }
  const missing = a.mailbox ? "SMTP AUTH" : "a licensed mailbox";
  const graphAlso = "Microsoft Graph (choose it below) also works with Security Defaults on, over HTTPS with an app registration, and reaches everyone.";
  if (a.connector !== "no") {
    const warnings = [
      "Needs an inbound connector in the Exchange admin center (the steps are next).",
      a.connector === "ip"
        ? "Your domain's SPF record must include the office's public IP, and this PC must be able to reach port 25 on the internet (some providers block it)."
        : "The certificate's subject (CN or SAN) must be one of your accepted domains, and this PC must be able to reach port 25 on the internet (some providers block it).",
    ];
    if (a.mailbox) warnings.push("If port 25 is blocked or you would rather not run a connector: " + graphAlso);
    return {
      ...base, mode: "relay", connectorAuth: a.connector, reasonId: a.mailbox ? "relay-no-smtp-auth" : "relay-no-mailbox",
      reason: `Without ${missing} there is nothing to sign in with, so a connector that trusts ${CONNECTOR_WORDS[a.connector]} is Microsoft's route, and it reaches recipients inside and outside the organisation.`,
      tradeoffs: tradeoffs("relay"), warnings,
    };
  }
  if (!a.external) {
    return {
      ...base, mode: "direct-send", reasonId: "direct-send-internal",
      reason: `All recipients are inside the organisation and, without ${missing} or a connector, Direct Send — delivering to your tenant's MX with no sign-in — is the route that works.`,
      tradeoffs: tradeoffs("direct-send"),
      warnings: [
        "Microsoft recommends Direct Send only to admins who accept its risks: anyone can send anonymously to your domains this way, so mail is checked like mail from the internet.",
        "A tenant can refuse Direct Send altogether (Set-OrganizationConfig -RejectDirectSend $true); Postern then holds the mail with 550 5.7.68.",
        graphAlso,
      ],
    };
  }
  const warnings = [
    "Needs an app registration in Microsoft Entra with the Application permissions Mail.Send and Mail.ReadWrite (for scans over about 3 MB) and admin consent, and a client secret (the steps are next).",
    "An application permission lets the app send as any mailbox of the tenant; the optional RBAC for Applications lines in the next step limit it to the one Postern sends from.",
  ];
  if (!a.mailbox) warnings.unshift("Postern sends from one mailbox: a shared mailbox (e.g. scanner@your-domain) needs no licence and is enough.");
  return {
    ...base, mode: "graph", auth: "oauth", flow: "client-credentials", reasonId: a.mailbox ? "graph-no-smtp-auth" : "graph-no-mailbox",
    reason: a.mailbox
      ? "Outside recipients with SMTP AUTH off (as Security Defaults make it) and no connector leave Microsoft Graph, which sends over HTTPS with an app registration, works with Security Defaults on and reaches anyone with a copy in Sent Items."
      : "Outside recipients with no licensed mailbox and no connector leave Microsoft Graph, which sends over HTTPS from a shared mailbox with an app registration, works with Security Defaults on and reaches anyone.",
    tradeoffs: tradeoffs("graph"), warnings,
  };
}
