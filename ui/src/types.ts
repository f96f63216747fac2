//! The JSON shapes of docs/ipc.md, as TypeScript types. The engine owns
//! these shapes; this file only describes them (keep in step with ipc.md).

export type MsgState = "queued" | "sending" | "deferred" | "held" | "sent" | "failed";
export const MSG_STATES: MsgState[] = ["queued", "sending", "deferred", "held", "sent", "failed"];

export interface Recipient { address: string; state: string; reply?: string | null }

export interface MessageInfo {
  id: string;
  from: string;
  to: string[];
  subject: string;
  size: number;
  received_at: number;
  client: { peer: string; helo?: string | null; auth_user?: string | null; tls?: boolean };
  state: MsgState;
  attempts: number;
  next_attempt?: number | null;
  last_reply?: string | null;
  summary?: string | null;
  fix?: string | null;
  recipients: Recipient[];
  updated_at: number;
  rewrite_sender?: boolean | null;
  transcript?: string;
}

export interface Attention { summary: string; fix: string; cause?: string; recheck_at?: number | null }

export interface ThrottleStatus {
  messages_per_minute: number | null;
  messages_last_minute: number;
  next_slot_in_secs: number;
  recipients_per_day: number | null;
  recipient_window_secs: number;
  recipients_in_window: number;
  recipients_left: number | null;
  recipients_free_in_secs: number | null;
  quota_blocked_for_secs: number | null;
  busy_for_secs: number | null;
  eta_secs: number | null;
  eta_unix_ms: number | null;
}

export type AccountState = "not-configured" | "ready" | "signed-in" | "sign-in-needed";
export interface AccountBrief { state: AccountState; reason?: string | null; access_token_expires_at?: number | null }

export interface Status {
  running: boolean;
  paused: boolean;
  queue: Record<MsgState, number>;
  attention: Attention | null;
  connections: number;
  throttle: ThrottleStatus | null;
  account: AccountBrief;
  upstream: { mode: string; host: string; port: number; mailbox: string; auth: string };
  listening: string[];
  spool: string;
}

export interface HistoryPoint { at: number; messages: number; recipients: number }

export interface Account {
  mailbox: string; auth: string; flow: string; client_id: string; tenant: string;
  account: AccountBrief;
}

export type SignIn =
  | { kind: "browser"; url: string }
  | { kind: "device"; verification_uri: string; user_code: string; message: string };

export interface FieldError { key: string; message: string }
export interface Validation { ok: boolean; errors: FieldError[] }

export interface Check { id: string; title: string; verdict: "ok" | "warn" | "fail" | "skip"; found: string; fix?: string | null }

export interface LogLine { seq: number; time: number | string; level: string; message: string }

export interface NotificationSettings { failed: boolean; sign_in: boolean; unreachable: boolean; budget: boolean; stuck: boolean }

export type EngineEvent =
  | { event: "received"; id: string; from: string; recipients: number; bytes: number }
  | { event: "sent"; id: string; reply: string }
  | { event: "deferred"; id: string; reason: string; next_attempt_unix: number }
  | { event: "failed"; id: string; recipients: string[]; reply: string; summary: string; fix: string }
  | { event: "needs-attention"; summary: string; fix: string }
  | { event: "attention-cleared" }
  | { event: "deleted"; id: string }
  | { event: "progress"; id: string; bytes: number; total: number };

export type Page = "queue" | "throttling" | "account" | "settings" | "diagnostics" | "logs" | "setup" | "devices";
export const PAGES: Page[] = ["queue", "throttling", "account", "settings", "diagnostics", "logs"];

/** The config as JSON: sections of keys (see README's configuration reference). */
export type Config = Record<string, Record<string, unknown>>;

// Setup assistant (SPEC-issue11.md)
// Replies of the commands added for the setup assistant, the secrets and the
// device card. Hand-written from SPEC-issue11.md until the generated
// bindings replace them.

export interface SetupInfo { first_run: boolean; config_path: string }
export interface SetupCancelled { restored: boolean }
export interface DeviceUserSecret { name: string; stored: boolean }
export interface SecretsState { client_secret: boolean; mailbox_password: boolean; refresh_token: boolean; device_users: DeviceUserSecret[] }
export type SecretKind = "client-secret" | "mailbox-password";
export interface AppToken { roles: string[]; expires_at: number; audience: string }
export interface DeviceAddress { interface: string; address: string; network: string }
export interface DeviceCard {
  addresses: DeviceAddress[]; port: number; lan: boolean; starttls: boolean; tls_ports: number[];
  login_needed: boolean; users: string[]; allow: string[]; hostname: string;
}
export interface ListenOnLan { ok: boolean; errors: FieldError[]; restarted: boolean }
