//! What the Account page says about the app-only state and the permissions
//! Microsoft granted (`get_permissions`: the token's `roles` or `scp`, never
//! the token), as plain data so it is tested without a page.

import type { Account, Permissions } from "./types";

/** Graph with client credentials: the app itself signs in, nobody's account. */
export function isGraphAppOnly(a: Account): boolean {
  return a.mode === "graph" && a.auth === "oauth" && a.flow === "client-credentials";
}

/** "Signed in as the app … for tenant …; sends as …", when the app may sign in. */
export function appOnlyLine(a: Account): string | null {
  if (!isGraphAppOnly(a)) return null;
  if (a.account.state !== "signed-in" && a.account.state !== "ready") return null;
  const mailbox = a.mailbox || "the mailbox (not set yet)";
  return `Signed in as the app ${a.client_id || "(no client id)"} for tenant ${a.tenant}; sends as ${mailbox}`;
}

/** Whether the page asks for the permissions: OAuth with a token to be had. */
export function wantsPermissions(a: Account): boolean {
  return a.auth === "oauth" && (a.account.state === "signed-in" || a.account.state === "ready");
}

export interface PermissionView {
  /** "Granted to the app (roles)" or "Granted to you (scp)". */
  heading: string;
  granted: string[];
  /** One plain sentence per missing permission. */
  warnings: { permission: string; text: string; fix: string }[];
}

export function permissionView(p: Permissions): PermissionView {
  return {
    heading: p.kind === "app" ? "Permissions granted to the app" : "Permissions you granted when signing in",
    granted: p.granted,
    warnings: p.missing.map((m) => ({ permission: m.permission, text: `${m.permission} is not granted. ${m.effect}`, fix: m.fix })),
  };
}
