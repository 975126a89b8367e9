// Product cards for a recommendation list: title, category, price, score bar, the explanation with
// its evidence as chips, and feedback buttons. Shared by the shopper home and the new-shopper page.

import { append, h, formatNumber, formatPrice } from "../dom.js";

/** @typedef {{item_id: string, title: string, categories?: string[], price?: number | null,
 *   score?: number, explanation?: {text: string, source: string, evidence?: any} | null}} RecItem */

/** @typedef {"like" | "dismiss" | "cart"} FeedbackEvent */

const FEEDBACK_BUTTONS = /** @type {const} */ ([
  { event: "like", label: "Like", testid: "feedback-like", icon: "♥" },
  { event: "cart", label: "Add to cart", testid: "feedback-cart", icon: "+" },
  { event: "dismiss", label: "Not for me", testid: "feedback-dismiss", icon: "✕" },
]);

const MAX_CHIPS = 6;
const FEEDBACK_VERBS = {
  purchase: "bought",
  cart: "added to cart",
  like: "liked",
  rating: "rated",
  click: "looked at",
  view: "looked at",
};

/** Read a title from an evidence entry that may be a plain string or an object. */
function titleOf(entry) {
  if (entry === null || entry === undefined) return "";
  if (typeof entry === "string") return entry;
  return String(entry.title ?? entry.item_title ?? entry.name ?? entry.item_id ?? "");
}

function itemLink(entry) {
  const title = titleOf(entry);
  const id = typeof entry === "object" && entry ? entry.item_id : undefined;
  return id ? h("a", { href: `#/item/${encodeURIComponent(id)}` }, title) : title;
}

/**
 * Turn the structured evidence into short chips a shopper can scan.
 * @param {any} evidence the explanation's evidence dict (explain.evidence.Evidence.to_dict()).
 * @returns {HTMLElement[]}
 */
export function evidenceChips(evidence) {
  if (!evidence || typeof evidence !== "object") return [];
  const chips = [];
  const chip = (kind, ...content) =>
    h("li", { class: `chip chip-${kind}`, "data-testid": "evidence-chip", "data-kind": kind }, ...content);

  const cited = new Set();
  for (const item of (evidence.history_items ?? []).slice(0, 3)) {
    cited.add(item?.item_id);
    chips.push(chip("history", "because you liked ", itemLink(item)));
  }
  // Fresh feedback is often also in the history; one chip per item is enough.
  for (const item of (evidence.feedback ?? []).filter((f) => !cited.has(f?.item_id)).slice(0, 2)) {
    const event = typeof item === "object" && item ? item.event : "";
    chips.push(chip("feedback", `you recently ${FEEDBACK_VERBS[event] ?? "chose"} `, itemLink(item)));
  }
  const segment = evidence.segment;
  if (segment && typeof segment === "object") {
    const name = segment.label ?? segment.name ?? `segment ${segment.segment_id ?? ""}`;
    const rank = Number(segment.item_rank ?? segment.rank);
    const lift = Number(segment.lift);
    let detail = "";
    if (Number.isFinite(rank) && rank > 0 && rank <= 10) detail = ` (#${rank})`;
    else if (Number.isFinite(lift) && lift > 0) detail = ` (${lift.toFixed(1)}× as often)`;
    chips.push(chip("segment", `popular in your segment “${name}”${detail}`));
  }
  for (const category of (evidence.shared_categories ?? []).slice(0, 3)) {
    chips.push(chip("category", `you often pick ${titleOf(category)}`));
  }
  for (const match of (evidence.profile_matches ?? []).slice(0, 2)) {
    if (!match || typeof match !== "object") continue;
    const attribute = String(match.attribute ?? "profile").replaceAll("_", " ");
    const value = titleOf(match.value);
    if (attribute === "interest") {
      chips.push(chip("profile", `your interest: ${value}`));
    } else {
      const lift = Number(match.lift);
      const detail = Number.isFinite(lift) && lift > 0 ? ` (${lift.toFixed(1)}× as often)` : "";
      chips.push(chip("profile", `popular with shoppers of your ${attribute} “${value}”${detail}`));
    }
  }
  if (chips.length > MAX_CHIPS) chips.length = MAX_CHIPS; // the sentence above still names every reason
  if (evidence.cold_start && chips.length === 0) {
    chips.push(chip("cold", "a popular pick for new shoppers"));
  }
  return chips;
}

function explanationBlock(explanation) {
  if (!explanation) {
    return h("p", { class: "explanation muted", "data-testid": "rec-explanation" }, "No explanation requested.");
  }
  const isLlm = explanation.source === "llm";
  const badge = h(
    "span",
    {
      class: `badge ${isLlm ? "badge-llm" : "badge-template"}`,
      title: isLlm
        ? "Written by the language model and checked against the evidence"
        : "Written from a template over the evidence",
    },
    isLlm ? "LLM" : "Template",
  );
  const chips = evidenceChips(explanation.evidence);
  return h(
    "div",
    { class: "explanation", "data-testid": "rec-explanation" },
    h("p", {}, badge, " ", explanation.text ?? ""),
    chips.length ? h("ul", { class: "chips", "aria-label": "Evidence" }, chips) : null,
  );
}

/** Map scores to bar widths relative to the list, since raw dot products have no fixed range. */
function scoreScale(items) {
  const scores = items.map((item) => Number(item.score)).filter(Number.isFinite);
  if (!scores.length) return () => 0;
  const max = Math.max(...scores);
  const min = Math.min(...scores);
  const span = max - min;
  return (score) => {
    const s = Number(score);
    if (!Number.isFinite(s)) return 0;
    return span > 1e-9 ? 20 + (80 * (s - min)) / span : 100;
  };
}

/**
 * One product card.
 * @param {RecItem} item
 * @param {{width: number, isNew: boolean, rank: number,
 *   onFeedback?: (item: RecItem, event: FeedbackEvent, card: HTMLElement) => void}} options
 */
function recCard(item, { width, isNew, rank, onFeedback }) {
  const categories = (item.categories ?? []).map(String);
  const price = formatPrice(item.price);
  const headingId = `rec-title-${rank}`;
  const card = h("li", {
    class: `card rec-card${isNew ? " is-new" : ""}`,
    "data-testid": "rec-card",
    "data-item-id": item.item_id,
    "aria-labelledby": headingId,
  });
  const buttons = onFeedback
    ? h(
        "div",
        { class: "actions", role: "group", "aria-label": "Feedback" },
        FEEDBACK_BUTTONS.map(({ event, label, testid, icon }) =>
          h(
            "button",
            {
              type: "button",
              class: `btn btn-${event}`,
              "data-testid": testid,
              "aria-label": `${label}: ${item.title}`,
              onclick: () => onFeedback(item, event, card),
            },
            h("span", { "aria-hidden": "true" }, icon),
            ` ${label}`,
          ),
        ),
      )
    : null;
  return append(card, [
    h(
      "div",
      { class: "card-head" },
      h("span", { class: "rank", "aria-hidden": "true" }, String(rank)),
      h("h3", { id: headingId }, h("a", { href: `#/item/${encodeURIComponent(item.item_id)}` }, item.title)),
      isNew ? h("span", { class: "tag-new" }, "New") : null,
    ),
    h(
      "p",
      { class: "meta" },
      categories.length ? h("span", { class: "category" }, categories.join(" · ")) : null,
      price ? h("span", { class: "price" }, price) : null,
    ),
    h(
      "div",
      { class: "score", title: `Model score ${formatNumber(item.score)}` },
      h("span", { class: "score-label" }, "Match"),
      h(
        "span",
        {
          class: "score-track",
          role: "meter",
          "aria-label": "Match score",
          "aria-valuemin": "0",
          "aria-valuemax": "100",
          "aria-valuenow": String(Math.round(width)),
          "aria-valuetext": `score ${formatNumber(item.score)}`,
        },
        h("span", { class: "score-fill", style: { width: `${width.toFixed(1)}%` } }),
      ),
      h("span", { class: "score-value" }, formatNumber(item.score, 2)),
    ),
    explanationBlock(item.explanation),
    buttons,
  ]);
}

/**
 * Render a recommendation list, marking items that were not in the previous list as new.
 * @param {RecItem[]} items
 * @param {{previousIds?: Set<string>, onFeedback?: (item: RecItem, event: FeedbackEvent, card: HTMLElement) => void,
 *   label?: string}} [options]
 */
export function recList(items, { previousIds, onFeedback, label = "Recommended products" } = {}) {
  const widthOf = scoreScale(items);
  if (!items.length) {
    return h(
      "p",
      { class: "empty", "data-testid": "rec-list" },
      "No recommendations left — try another category or come back later.",
    );
  }
  return h(
    "ol",
    { class: "rec-list", "data-testid": "rec-list", "aria-label": label },
    items.map((item, index) =>
      recCard(item, {
        width: widthOf(item.score),
        isNew: Boolean(previousIds && previousIds.size && !previousIds.has(item.item_id)),
        rank: index + 1,
        onFeedback,
      }),
    ),
  );
}

/** Summarise how a refreshed list differs from the old one, for the live region. */
export function describeChange(previousIds, items) {
  const added = items.filter((item) => !previousIds.has(item.item_id)).length;
  const nowIds = new Set(items.map((item) => item.item_id));
  const removed = [...previousIds].filter((id) => !nowIds.has(id)).length;
  if (!added && !removed) return "Recommendations re-ranked.";
  return `Recommendations updated: ${added} new, ${removed} removed.`;
}
