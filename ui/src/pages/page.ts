//! What every page gives the app shell: its root element and a hook for
//! when it becomes visible (to load what it shows).

export interface PageView {
  el: HTMLElement;
  /** Called each time the page is shown. */
  shown?(): void;
}
