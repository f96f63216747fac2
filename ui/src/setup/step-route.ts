//! Step 1, "How should Postern send?": the four questions of Microsoft's
//! comparison as radio groups, the recommendation (recommend.ts) with its
//! reason, trade-offs and warnings, and the routes to pick from — Microsoft
//! Graph among them, a choice like the others.

import { clear, h } from "../dom";
import { applyChoice, choiceFor } from "./draft";
import { recommend, ROUTE_TITLE, TOPIC_TITLE, tradeoffs, type Answers, type Connector, type Route } from "./recommend";
import type { Ctx, Step } from "./wizard";

interface Question { key: keyof Answers; text: string; help: string; options: [string, string][] }

const QUESTIONS: Question[] = [
  { key: "external", text: "Do recipients include people outside your organisation?", help: "Customers, suppliers, anyone not in your own Microsoft 365 domains.", options: [["yes", "Yes, sometimes or often"], ["no", "No, only our own people"]] },
  { key: "mailbox", text: "Is there a licensed mailbox for the devices to send as?", help: "E.g. scanner@your-domain, with an Exchange Online licence.", options: [["yes", "Yes"], ["no", "No"]] },
  { key: "connector", text: "Does the office have a static public IP, or a certificate, for a connector?", help: "A fixed internet address from your provider, or a certificate from a public authority for one of your domains.", options: [["ip", "Yes, a static public IP"], ["cert", "Yes, a certificate"], ["no", "No / not sure"]] },
  { key: "smtpAuth", text: "Is SMTP AUTH allowed in your tenant?", help: "If Security Defaults are on, the answer is no. Not sure? Microsoft has switched it off by default since 2020; the check in step 5 finds out.", options: [["yes", "Yes"], ["no", "No / Security Defaults are on"]] },
];

const ROUTES: Route[] = ["submission", "relay", "direct-send", "graph"];
const qid = (k: string) => (k === "smtpAuth" ? "smtpauth" : k);

function complete(a: Partial<Answers>): a is Answers {
  return a.external != null && a.mailbox != null && a.connector != null && a.smtpAuth != null;
}

export function routeStep(ctx: Ctx): Step {
  const s = ctx.state;
  const recBox = h("div", { class: "recommendation-box", "aria-live": "polite" });
  const el = h("div", { class: "setup-step" },
    h("p", { class: "muted" }, "Four questions from Microsoft's own comparison of the ways to send from devices; the answer picks the route."),
    QUESTIONS.map((q) => h("fieldset", { class: "question", id: `setup-q-${qid(q.key)}` },
      h("legend", {}, q.text), h("p", { class: "help" }, q.help),
      h("div", { class: "answers" }, q.options.map(([v, label]) => {
        const id = `setup-answer-${qid(q.key)}-${v}`;
        const i = h("input", { type: "radio", name: `setup-${q.key}`, id, value: v, onchange: () => answer(q.key, v) });
        return h("label", { class: "answer", for: id }, i, " ", label);
      })))),
    recBox);

  function answer(key: keyof Answers, v: string) {
    if (key === "connector") s.answers.connector = v as Connector;
    else s.answers[key] = v === "yes";
    s.route = complete(s.answers) ? recommend(s.answers).mode : null;
    render();
    ctx.changed();
  }

  function render() {
    if (!complete(s.answers)) { clear(recBox, h("p", { class: "muted", id: "setup-recommendation-pending" }, "Answer the four questions to see which way fits.")); return; }
    const r = recommend(s.answers);
    const chosen = s.route ?? r.mode;
    clear(recBox,
      h("section", { class: "panel recommendation", id: "setup-recommendation", "data-mode": r.mode, "data-reason": r.reasonId },
        h("h3", {}, "Recommended"),
        h("p", { class: "rec-mode", id: "setup-rec-mode" }, ROUTE_TITLE[r.mode]),
        h("p", { class: "rec-reason", id: "setup-reason" }, r.reason),
        r.warnings.length ? h("ul", { class: "warnings", id: "setup-warnings" }, r.warnings.map((w) => h("li", {}, w))) : null),
      h("fieldset", { class: "question routes", id: "setup-routes" }, h("legend", {}, "Route"),
        ROUTES.map((m) => {
          const id = `setup-route-${m}`;
          const i = h("input", { type: "radio", name: "setup-route", id, value: m, checked: m === chosen,
            onchange: () => { s.route = m; render(); ctx.changed(); } });
          return h("label", { class: "answer route", for: id }, i, " ", ROUTE_TITLE[m],
            m === r.mode ? h("span", { class: "pill pill-ok" }, "recommended") : null);
        })),
      h("section", { class: "panel" }, h("h3", {}, `Trade-offs of ${ROUTE_TITLE[chosen]}`),
        h("dl", { class: "facts wide tradeoffs", id: "setup-tradeoffs" }, tradeoffs(chosen).map((t) => [
          h("dt", {}, TOPIC_TITLE[t.topic]), h("dd", { class: t.good ? "good" : "bad", "data-topic": t.topic }, h("span", { class: "mark", "aria-hidden": "true" }, t.good ? "✓ " : "✗ "), t.text)]))));
  }

  return {
    title: "How should Postern send?",
    el,
    enter: render,
    canNext: () => complete(s.answers),
    next: async () => {
      if (!complete(s.answers)) return false;
      const r = recommend(s.answers);
      const choice = choiceFor(s.route ?? r.mode, r, s.answers, s.config);
      // Keep the sign-in chosen in step 2 when coming back to the same route.
      if (s.choice && s.choice.mode === choice.mode && choice.mode === "submission") choice.signIn = s.choice.signIn;
      s.choice = choice;
      s.config = applyChoice(s.config, choice);
      return true;
    },
  };
}
