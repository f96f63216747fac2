//! The JSON shapes of docs/ipc.md. They are generated from the Rust types
//! (ts-rs, into ./bindings/, checked by `cargo test`: see
//! src-tauri/src/contract.rs); this file re-exports them under the names
//! the UI imports, and adds the few types that exist only in the UI.
//! Never describe an IPC shape by hand here: change the Rust type and run
//! `UPDATE_BINDINGS=1 cargo test -p postern --lib bindings`.

import type { AccountBrief } from "./bindings/AccountBrief";
import type { MsgState } from "./bindings/MsgState";

export type { Account } from "./bindings/Account";
export type { AccountBrief } from "./bindings/AccountBrief";
export type { Attention } from "./bindings/Attention";
export type { Check } from "./bindings/Check";
export type { ClientInfo } from "./bindings/ClientInfo";
export type { Config } from "./bindings/Config";
export type { Deleted } from "./bindings/Deleted";
export type { DeliveryConfig } from "./bindings/DeliveryConfig";
export type { DnsConfig } from "./bindings/DnsConfig";
export type { Done } from "./bindings/Done";
export type { EngineEvent } from "./bindings/EngineEvent";
export type { FieldError } from "./bindings/FieldError";
export type { HistoryPoint } from "./bindings/HistoryPoint";
export type { LimitsConfig } from "./bindings/LimitsConfig";
export type { ListenerConfig } from "./bindings/ListenerConfig";
export type { LogLine } from "./bindings/LogLine";
export type { MailboxThrottle } from "./bindings/MailboxThrottle";
export type { MessageDetail } from "./bindings/MessageDetail";
export type { MessageId } from "./bindings/MessageId";
export type { MessageInfo } from "./bindings/MessageInfo";
export type { MsgState } from "./bindings/MsgState";
export type { NotificationSettings } from "./bindings/NotificationSettings";
export type { OAuthConfig } from "./bindings/OAuthConfig";
export type { OAuthFlow } from "./bindings/OAuthFlow";
export type { Paused } from "./bindings/Paused";
export type { QueueCounts } from "./bindings/QueueCounts";
export type { Recipient } from "./bindings/Recipient";
export type { RecipientState } from "./bindings/RecipientState";
export type { Retried } from "./bindings/Retried";
export type { SaveReply } from "./bindings/SaveReply";
export type { SendAs } from "./bindings/SendAs";
export type { SettingsReply } from "./bindings/SettingsReply";
export type { SignIn } from "./bindings/SignIn";
export type { SignInFinished } from "./bindings/SignInFinished";
export type { SpoolConfig } from "./bindings/SpoolConfig";
export type { Status } from "./bindings/Status";
export type { TestQueued } from "./bindings/TestQueued";
export type { Trace } from "./bindings/Trace";
export type { TraceOutcome } from "./bindings/TraceOutcome";
export type { TrackingState } from "./bindings/TrackingState";
export type { TrackingStatus } from "./bindings/TrackingStatus";
export type { ThrottleStatus } from "./bindings/ThrottleStatus";
export type { UpstreamAuth } from "./bindings/UpstreamAuth";
export type { UpstreamBrief } from "./bindings/UpstreamBrief";
export type { UpstreamConfig } from "./bindings/UpstreamConfig";
export type { UpstreamMode } from "./bindings/UpstreamMode";
export type { Validation } from "./bindings/Validation";
export type { Verdict } from "./bindings/Verdict";

/** The `state` tag of the account: "signed-out", "sign-in-needed", … */
export type AccountState = AccountBrief["state"];

export const MSG_STATES: MsgState[] = ["queued", "sending", "deferred", "held", "sent", "failed"];

export type Page = "queue" | "throttling" | "account" | "settings" | "diagnostics" | "logs" | "setup" | "devices";
export const PAGES: Page[] = ["queue", "throttling", "account", "settings", "diagnostics", "logs"];

/** The settings form's working copy: the `Config` of `get_settings` while
 *  the person edits it (any section, any key, any value typed so far).
 *  A `Config` is one; `validate_settings` and `save_settings` take one. */
export type ConfigForm = Record<string, Record<string, unknown>>;

// The setup assistant, the secrets and the device card (docs/ipc.md).
export type { DeviceAddress } from "./bindings/DeviceAddress";
export type { DeviceCard } from "./bindings/DeviceCard";
export type { DeviceUserSecret } from "./bindings/DeviceUserSecret";
export type { ListenOnLan } from "./bindings/ListenOnLan";
export type { Removed } from "./bindings/Removed";
export type { SecretsState } from "./bindings/SecretsState";
export type { SetupCancelled } from "./bindings/SetupCancelled";
export type { SetupInfo } from "./bindings/SetupInfo";
export type { Stored } from "./bindings/Stored";
export type { AppToken } from "./bindings/AppToken";
export type { GrantKind } from "./bindings/GrantKind";
export type { MissingPermission } from "./bindings/MissingPermission";
export type { Permissions } from "./bindings/Permissions";
import type { SecretKind as AnySecretKind } from "./bindings/SecretKind";
/** What `store_secret` takes (a refresh token only ever comes from a sign-in). */
export type SecretKind = Exclude<AnySecretKind, "refresh-token">;
