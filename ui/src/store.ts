//! Shared state fed by events: the last status (and when it arrived, for
//! local countdowns), the queue, and a one-second local tick for countdown
//! text. Views subscribe; nothing here asks the engine on a timer.

import { api, on } from "./ipc";
import { applyEvent, emptyQueue, loaded, touchesQueue, type QueueState } from "./queue-state";
import type { EngineEvent, Status } from "./types";

type Listener = () => void;

export class Store {
  status: Status | null = null;
  /** Local clock (ms) when `status` arrived; countdowns count from here. */
  statusAt = 0;
  queue: QueueState = emptyQueue;
  queueError: string | null = null;
  private subs = new Set<Listener>();
  private tickSubs = new Set<Listener>();
  private eventSubs = new Set<(e: EngineEvent) => void>();
  private fetching: Promise<void> | null = null;
  private again = false;

  subscribe(f: Listener): () => void { this.subs.add(f); return () => this.subs.delete(f); }
  /** Called every second (local clock only) for countdowns. */
  onTick(f: Listener): () => void { this.tickSubs.add(f); return () => this.tickSubs.delete(f); }
  /** Called with every engine event (after the queue was patched). */
  onEvent(f: (e: EngineEvent) => void): () => void { this.eventSubs.add(f); return () => this.eventSubs.delete(f); }
  private changed() { for (const f of this.subs) f(); }

  setStatus(st: Status) { this.status = st; this.statusAt = Date.now(); this.changed(); }

  /** Re-fetch the queue; calls made while one is in flight coalesce into one more. */
  refreshQueue(): Promise<void> {
    if (this.fetching) { this.again = true; return this.fetching; }
    this.fetching = (async () => {
      do {
        this.again = false;
        try { this.queue = loaded(this.queue, await api.getQueue()); this.queueError = null; }
        catch (e) { this.queueError = String(e); }
        this.changed();
      } while (this.again);
      this.fetching = null;
    })();
    return this.fetching;
  }

  handleEvent(e: EngineEvent) {
    this.queue = applyEvent(this.queue, e, Date.now());
    this.changed();
    for (const f of this.eventSubs) f(e);
    if (touchesQueue(e)) void this.refreshQueue();
  }

  async start() {
    await on("engine-event", (e) => this.handleEvent(e));
    await on("status-changed", (st) => this.setStatus(st));
    window.setInterval(() => { for (const f of this.tickSubs) f(); }, 1000);
    const [st] = await Promise.allSettled([api.getStatus().then((s) => this.setStatus(s)), this.refreshQueue()]);
    if (st.status === "rejected") this.changed();
  }
}
