//! The only door to the Tauri shell: typed wrappers around the commands and
//! events of docs/ipc.md. Nothing else in the UI calls `invoke` or `listen`.

import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type {
  Account, AppToken, Check, Config, DeviceCard, EngineEvent, HistoryPoint, ListenOnLan, LogLine, MessageInfo,
  NotificationSettings, Page, SecretKind, SecretsState, SetupCancelled, SetupInfo, SignIn, Status, Validation,
} from "./types";

export const api = {
  getStatus: () => invoke<Status>("get_status"),
  getQueue: () => invoke<MessageInfo[]>("get_queue"),
  getMessage: (id: string) => invoke<MessageInfo>("get_message", { id }),
  retry: (id: string) => invoke<{ retried: number }>("retry", { id }),
  retryAll: () => invoke<{ retried: number }>("retry_all"),
  deleteMessage: (id: string) => invoke<{ deleted: string }>("delete_message", { id }),
  resendRewritten: (id: string) => invoke<{ retried: number }>("resend_rewritten", { id }),
  setPaused: (paused: boolean) => invoke<{ paused: boolean }>("set_paused", { paused }),
  getThrottleHistory: () => invoke<HistoryPoint[]>("get_throttle_history"),
  getAccount: () => invoke<Account>("get_account"),
  signIn: (deviceCode: boolean) => invoke<SignIn>("sign_in", { deviceCode }),
  signOut: () => invoke<Record<string, never>>("sign_out"),
  getSettings: () => invoke<{ path: string; config: Config }>("get_settings"),
  validateSettings: (config: Config) => invoke<Validation>("validate_settings", { config }),
  saveSettings: (config: Config) => invoke<Validation & { restarted: boolean }>("save_settings", { config }),
  runDiagnostics: () => invoke<Check[]>("run_diagnostics"),
  getLogs: (since?: number) => invoke<LogLine[]>("get_logs", since == null ? {} : { since }),
  sendTest: (to: string) => invoke<{ id: string }>("send_test", { to }),
  getNotificationSettings: () => invoke<NotificationSettings>("get_notification_settings"),
  takePending: () => invoke<PendingView | null>("take_pending"),
  setNotificationSettings: (s: NotificationSettings) => invoke<NotificationSettings>("set_notification_settings", s as unknown as Record<string, unknown>),
  // Setup assistant (SPEC-issue11.md)
  getSetup: () => invoke<SetupInfo>("get_setup"),
  setupBegin: () => invoke<Record<string, never>>("setup_begin"),
  setupCancel: () => invoke<SetupCancelled>("setup_cancel"),
  setupFinish: () => invoke<Record<string, never>>("setup_finish"),
  getSecrets: () => invoke<SecretsState>("get_secrets"),
  storeSecret: (kind: SecretKind, value: string) => invoke<{ stored: true }>("store_secret", { kind, value }),
  removeSecret: (kind: SecretKind | "refresh-token") => invoke<{ removed: true }>("remove_secret", { kind }),
  addDeviceUser: (name: string, password: string) => invoke<{ stored: true }>("add_device_user", { name, password }),
  removeDeviceUser: (name: string) => invoke<{ removed: true }>("remove_device_user", { name }),
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
  "signin-finished": { ok: boolean; message: string };
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
