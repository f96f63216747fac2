//! The only door to the Tauri shell: typed wrappers around the commands and
//! events of docs/ipc.md. Nothing else in the UI calls `invoke` or `listen`.

import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type {
  Account, Check, ConfigForm, Deleted, Done, EngineEvent, HistoryPoint, LogLine, MessageDetail, MessageInfo,
  NotificationSettings, Page, Paused, Retried, SaveReply, SettingsReply, SignIn, SignInFinished, Status,
  TestQueued, Validation,
  AppToken, DeviceCard, Permissions, ListenOnLan, Removed, SecretKind, SecretsState, SetupCancelled, SetupInfo, Stored,
} from "./types";

export const api = {
  getStatus: () => invoke<Status>("get_status"),
  getQueue: () => invoke<MessageInfo[]>("get_queue"),
  getMessage: (id: string) => invoke<MessageDetail>("get_message", { id }),
  retry: (id: string) => invoke<Retried>("retry", { id }),
  retryAll: () => invoke<Retried>("retry_all"),
  deleteMessage: (id: string) => invoke<Deleted>("delete_message", { id }),
  resendRewritten: (id: string) => invoke<Retried>("resend_rewritten", { id }),
  setPaused: (paused: boolean) => invoke<Paused>("set_paused", { paused }),
  getThrottleHistory: () => invoke<HistoryPoint[]>("get_throttle_history"),
  getAccount: () => invoke<Account>("get_account"),
  getPermissions: () => invoke<Permissions>("get_permissions"),
  signIn: (deviceCode: boolean) => invoke<SignIn>("sign_in", { deviceCode }),
  signOut: () => invoke<Done>("sign_out"),
  getSettings: () => invoke<SettingsReply>("get_settings"),
  validateSettings: (config: ConfigForm) => invoke<Validation>("validate_settings", { config }),
  saveSettings: (config: ConfigForm) => invoke<SaveReply>("save_settings", { config }),
  runDiagnostics: () => invoke<Check[]>("run_diagnostics"),
  getLogs: (since?: number) => invoke<LogLine[]>("get_logs", since == null ? {} : { since }),
  sendTest: (to: string) => invoke<TestQueued>("send_test", { to }),
  getNotificationSettings: () => invoke<NotificationSettings>("get_notification_settings"),
  takePending: () => invoke<PendingView | null>("take_pending"),
  setNotificationSettings: (s: NotificationSettings) => invoke<NotificationSettings>("set_notification_settings", s as unknown as Record<string, unknown>),
  // Setup assistant (SPEC-issue11.md)
  getSetup: () => invoke<SetupInfo>("get_setup"),
  setupBegin: () => invoke<Done>("setup_begin"),
  setupCancel: () => invoke<SetupCancelled>("setup_cancel"),
  setupFinish: () => invoke<Done>("setup_finish"),
  getSecrets: () => invoke<SecretsState>("get_secrets"),
  storeSecret: (kind: SecretKind, value: string) => invoke<Stored>("store_secret", { kind, value }),
  removeSecret: (kind: SecretKind | "refresh-token") => invoke<Removed>("remove_secret", { kind }),
  addDeviceUser: (name: string, password: string) => invoke<Stored>("add_device_user", { name, password }),
  removeDeviceUser: (name: string) => invoke<Removed>("remove_device_user", { name }),
  checkAppToken: () => invoke<AppToken>("check_app_token"),
  getDeviceCard: () => invoke<DeviceCard>("get_device_card"),
  listenOnLan: (network: string) => invoke<ListenOnLan>("listen_on_lan", { network }),
};

/** What the window was opened for, until the page listens for events. */
export type PendingView =
  | { event: "open-message"; payload: { id: string } }
  | { event: "navigate"; payload: { page: Page } };

export interface EventMap {
  "engine-event": EngineEvent;
  "status-changed": Status;
  "log-line": LogLine;
  "signin-finished": SignInFinished;
  "open-message": { id: string };
  navigate: { page: Page };
}

export function on<K extends keyof EventMap>(name: K, handler: (payload: EventMap[K]) => void): Promise<UnlistenFn> {
  return listen<EventMap[K]>(name, (e) => handler(e.payload));
}

/** A rejected command's message, in the plain words the shell gave it. */
export function errorText(e: unknown): string {
  if (typeof e === "string") return e;
  if (e instanceof Error) return e.message;
  return JSON.stringify(e);
}
