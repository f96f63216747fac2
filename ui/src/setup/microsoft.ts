//! What the admin does on the Microsoft side for a choice: the exact steps
//! (app registration, permissions and consent, connector, DNS) and the
//! PowerShell lines of the README, filled in with what was typed so far.
//! Pure: returns text; the page adds the copy buttons.

import type { ConfigForm } from "../types";
import type { Choice } from "./draft";

export interface MsStep {
  title: string;
  /** Plain sentences. */
  text: string[];
  /** Lines to copy (a command, a DNS record…), if any. */
  code?: string;
  /** What the code is, for its copy button's label. */
  codeLabel?: string;
}

const str = (v: unknown): string => (v == null ? "" : String(v).trim());
const or = (v: string, placeholder: string) => v || placeholder;

/** The steps for this choice; `extra` holds the unsaved helper fields (public IP, object id). */
export function microsoftSteps(choice: Choice, config: ConfigForm, extra: Record<string, string>): MsStep[] {
  const u = config.upstream ?? {}, o = config.oauth ?? {};
  const mailbox = or(str(u.mailbox), "scanner@contoso.com");
  const clientId = or(str(o.client_id), "<client id>");
  const objectId = or(str(extra["extra.sp_object_id"]), "<enterprise application object id>");
  const domain = or(str(u.domain) || (str(u.mailbox).split("@")[1] ?? ""), "contoso.com");
  const ip = or(str(extra["extra.public_ip"]), "203.0.113.7");
  const smtpAuth: MsStep = {
    title: "Allow SMTP AUTH for the mailbox",
    text: ["In Exchange Online PowerShell (Install-Module ExchangeOnlineManagement once, then Connect-ExchangeOnline). Security Defaults must be off for the tenant, or Microsoft refuses SMTP AUTH with 5.7.139."],
    code: `Connect-ExchangeOnline\nSet-CASMailbox -Identity ${mailbox} -SmtpClientAuthenticationDisabled $false`, codeLabel: "the PowerShell lines",
  };
  const spf: MsStep = {
    title: "Name the office's IP in SPF",
    text: [`In your DNS, the TXT record of ${domain} that starts with v=spf1 must include the office's public IP (keep what it already lists).`],
    code: `v=spf1 ip4:${ip} include:spf.protection.outlook.com -all`, codeLabel: "the SPF record",
  };
  const port25: MsStep = {
    title: "Check that this PC can reach port 25",
    text: ["Postern delivers to your tenant's MX on port 25. Some internet providers block it; the check in step 5 finds out."],
  };
  if (choice.mode === "graph") return [
    { title: "Register an app for Postern",
      text: ["Microsoft Entra admin center (entra.microsoft.com) → Identity → Applications → App registrations → New registration: name it \"Postern\", accounts in this organizational directory only, no redirect URI → Register.",
        "Copy the Application (client) ID and your domain (or the Directory (tenant) ID) into the fields below."] },
    { title: "Give it the permissions, and consent",
      text: ["API permissions → Add a permission → Microsoft Graph → Application permissions → Mail.Send and Mail.ReadWrite → Add permissions. Mail.ReadWrite is for messages over about 3 MB (most scans), which go as drafts; without it small messages still go.",
        "Optional, for delivery tracking (did the scan reach each recipient?): add Microsoft Graph → Application permissions → ExchangeMessageTrace.Read.All too. It lets the app read the whole tenant's message trace (who sent what to whom and when, not the contents); without it mail still goes and Postern only cannot tell you of bounces after Microsoft took a message.",
        "Then press \"Grant admin consent for <your organization>\"."] },
    { title: "Create a client secret",
      text: ["Certificates & secrets → New client secret. Copy its Value at once (Microsoft shows it only once; not the Secret ID): you type it in the next step, and it goes into the OS keychain only. Note when it expires."] },
    { title: "Optional: restrict the app to this mailbox",
      text: ["An application permission lets the app send as every mailbox of the tenant; RBAC for Applications limits it to a scope. The last line should list each role with InScope True. For the scope to restrict anything, revoke the admin consent given above once it does (the two add up); changes can take up to an hour.",
        "Copy the Enterprise application's Object ID (Entra → Enterprise applications → Postern; not the app registration's) into the field below, then in Exchange Online PowerShell:"],
      code: `Connect-ExchangeOnline\nNew-ServicePrincipal -AppId ${clientId} -ObjectId ${objectId} -DisplayName "Postern"\nNew-ManagementScope -Name "Postern mailboxes" -RecipientRestrictionFilter "PrimarySmtpAddress -eq '${mailbox}'"\nNew-ManagementRoleAssignment -App ${clientId} -Role "Application Mail.Send" -CustomResourceScope "Postern mailboxes"\nNew-ManagementRoleAssignment -App ${clientId} -Role "Application Mail.ReadWrite" -CustomResourceScope "Postern mailboxes"\nTest-ServicePrincipalAuthorization -Identity ${clientId} -Resource ${mailbox}`,
      codeLabel: "the PowerShell lines" },
  ];
  if (choice.mode === "submission") {
    if (choice.signIn === "password") return [
      { title: "The mailbox and its password", text: [`Postern signs in as ${mailbox} with its password, which you type in the next step (it goes into the OS keychain). The mailbox must not need multi-factor sign-in, and basic authentication must be allowed for the tenant — Microsoft turns it off by default at the end of December 2026, so prefer OAuth.`] },
      smtpAuth,
    ];
    const register: MsStep = {
      title: "Register an app for Postern",
      text: ["Microsoft Entra admin center (entra.microsoft.com) → App registrations → New registration. Name it \"Postern\", accounts in this organizational directory only.",
        "Copy the Application (client) ID and your domain (or the Directory (tenant) ID) into the fields below."],
    };
    if (choice.signIn === "client-credentials") return [
      register,
      { title: "Give it permission to send, and consent", text: ["API permissions → Add a permission → APIs my organization uses → Office 365 Exchange Online → Application permissions → SMTP.SendAsApp → Add permissions.", "Then press \"Grant admin consent for <your organization>\"."] },
      { title: "Create a client secret", text: ["Certificates & secrets → New client secret. Copy its Value at once (Microsoft shows it only once): you type it in the next step, and it goes into the OS keychain only. Note when it expires."] },
      { title: "Register the app in Exchange and give it the mailbox",
        text: ["Entra → Enterprise applications → Postern: copy its Object ID into the field below (it is not the app registration's object id). Then in Exchange Online PowerShell:"],
        code: `Connect-ExchangeOnline\nNew-ServicePrincipal -AppId ${clientId} -ObjectId ${objectId}\nAdd-MailboxPermission -Identity ${mailbox} -User ${objectId} -AccessRights FullAccess`, codeLabel: "the PowerShell lines" },
      smtpAuth,
    ];
    return [
      register,
      { title: "Let a person sign in from this app", text: ["Authentication → Add a platform → Mobile and desktop applications, redirect URI:", "Then, still under Authentication, turn on \"Allow public client flows\" (the code sign-in needs it)."], code: "http://localhost", codeLabel: "the redirect URI" },
      { title: "Give it permission to send", text: ["API permissions → Add a permission → APIs my organization uses → Office 365 Exchange Online → Delegated permissions → SMTP.Send → Add permissions; \"Grant admin consent\" spares the mailbox's user the question."] },
      smtpAuth,
    ];
  }
  if (choice.mode === "relay") {
    const cert = choice.connectorAuth === "cert";
    return [
      { title: "Add an inbound connector",
        text: ["Exchange admin center (admin.exchange.microsoft.com) → Mail flow → Connectors → Add a connector: from \"Your organization's email server\" to \"Office 365\", named \"Postern\".",
          cert ? `Authenticate \"By verifying that the subject name on the certificate … matches this domain name\": ${domain}. Or in Exchange Online PowerShell:`
            : `Authenticate \"By verifying that the IP address of the sending server matches\": ${ip}. Or in Exchange Online PowerShell:`],
        code: cert
          ? `Connect-ExchangeOnline\nNew-InboundConnector -Name "Postern" -ConnectorType OnPremises -SenderDomains * -RequireTls $true -TlsSenderCertificateName ${domain}`
          : `Connect-ExchangeOnline\nNew-InboundConnector -Name "Postern" -ConnectorType OnPremises -SenderDomains * -SenderIPAddresses ${ip} -RestrictDomainsToIPAddresses $true`,
        codeLabel: "the PowerShell lines" },
      cert
        ? { title: "The certificate on this PC", text: [`A certificate from a public certificate authority whose subject (CN or SAN) holds ${domain} or another accepted domain, and its private key, as PEM files on this PC. Give their paths below; keep the key readable only by you (chmod 600).`] }
        : spf,
      port25,
    ];
  }
  return [
    { title: "Make sure the tenant accepts Direct Send",
      text: ["Nothing to register. A tenant can refuse Direct Send; in Exchange Online PowerShell this must say False:"],
      code: "Connect-ExchangeOnline\nGet-OrganizationConfig | Select-Object RejectDirectSend", codeLabel: "the PowerShell lines" },
    spf,
    { title: "DKIM and DMARC", text: [`Mail on this route is checked like mail from the internet: turn on DKIM for ${domain} (Microsoft Defender portal → Email authentication settings) and publish a DMARC record, so it does not land in Junk.`] },
    port25,
  ];
}
