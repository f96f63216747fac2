//! What the setup assistant's steps share: the draft being built (answers,
//! chosen route, config, unsaved helper values) and the step interface the
//! page (pages/setup.ts) drives with its step indicator and Back/Next.

import type { Store } from "../store";
import type { ConfigForm } from "../types";
import type { Choice } from "./draft";
import type { Answers, Mode } from "./recommend";

export interface SetupState {
  /** The draft config: the current config from `get_settings`, plus what the assistant set. */
  config: ConfigForm;
  /** The config file's path. */
  path: string;
  answers: Partial<Answers>;
  /** The route picked in step 1 (the recommendation unless the admin chose another). */
  route: Mode | null;
  choice: Choice | null;
  /** Values typed only to fill in commands (public IP, object id); never saved. */
  extra: Record<string, string>;
  /** The draft was written with `save_settings`. */
  saved: boolean;
  /** How many times the draft was written (later steps re-check after a new save). */
  saves: number;
}

export interface Ctx {
  state: SetupState;
  store: Store;
  /** A step's "can I go on?" may have changed: re-draw Back/Next. */
  changed(): void;
  /** Undo at the end of this run of the assistant (event listeners the steps registered). */
  cleanup: (() => void)[];
}

export interface Step {
  title: string;
  el: HTMLElement;
  /** Called each time the step is shown. */
  enter(): void;
  /** Next is allowed (e.g. every question answered). */
  canNext?(): boolean;
  /** Next was pressed: do the step's work; false stays on the step. */
  next?(): Promise<boolean>;
}

export function emptyState(): SetupState {
  return { config: {}, path: "", answers: {}, route: null, choice: null, extra: {}, saved: false, saves: 0 };
}
