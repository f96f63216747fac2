//! Devices page ("Point a device here…" in the tray menu): the same device
//! card as the setup assistant's last step, loaded each time it is shown.

import { h } from "../dom";
import { deviceCard } from "../setup/device-card";
import type { PageView } from "./page";

export function devicesPage(): PageView {
  const card = deviceCard();
  const el = h("div", { class: "page page-devices" }, card.el);
  return { el, shown: () => void card.load() };
}
