// Item page: the product's details and the items closest to it in embedding space.

import { api } from "../api.js";
import { formatNumber, formatPrice, h, replace } from "../dom.js";
import { currentSession } from "../session.js";
import { announce, announceError } from "../status.js";

// Attributes shown in the details list when the catalogue has them, in this order.
const DETAIL_FIELDS = [
  ["brand", "Brand"],
  ["year", "Year"],
  ["item_id", "Product id"],
];

function detailsList(item) {
  const rows = [];
  const categories = (item.categories ?? []).map(String);
  if (categories.length) rows.push(["Category", categories.join(", ")]);
  const price = formatPrice(item.price);
  if (price) rows.push(["Price", price]);
  const attributes = { ...(item.attributes ?? {}), item_id: item.item_id };
  for (const [key, label] of DETAIL_FIELDS) {
    const value = attributes[key];
    if (value !== null && value !== undefined && value !== "") rows.push([label, String(value)]);
  }
  if (item.popularity !== undefined) rows.push(["Shoppers who chose it", formatNumber(item.popularity)]);
  return h("dl", { class: "details" }, rows.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

function shopperActions(item) {
  const session = currentSession();
  if (!session) return null;
  const send = async (event, label) => {
    try {
      await api.feedback(session.userId, item.item_id, event);
      announce(`${label}: ${item.title}`, "success");
    } catch (err) {
      announceError(err);
    }
  };
  return h(
    "div",
    { class: "actions", role: "group", "aria-label": "Feedback" },
    h("button", { type: "button", class: "btn btn-like", onclick: () => send("like", "Liked") }, "♥ Like"),
    h("button", { type: "button", class: "btn btn-cart", onclick: () => send("cart", "Added to cart") }, "+ Add to cart"),
  );
}

function similarList(items) {
  if (!items.length) return h("p", { class: "muted" }, "No similar products found.");
  return h(
    "ul",
    { class: "similar-list", "data-testid": "similar-list" },
    items.map((item) =>
      h(
        "li",
        { class: "card similar-card", "data-item-id": item.item_id },
        h("h3", {}, h("a", { href: `#/item/${encodeURIComponent(item.item_id)}` }, item.title ?? item.item_id)),
        h(
          "p",
          { class: "meta" },
          h("span", { class: "category" }, (item.categories ?? []).join(" · ")),
          item.price !== undefined && item.price !== null ? h("span", { class: "price" }, formatPrice(item.price)) : null,
        ),
        item.score !== undefined ? h("p", { class: "muted small" }, `similarity ${formatNumber(item.score, 2)}`) : null,
      ),
    ),
  );
}

/** Route handler for #/item/<id>. */
export async function renderItem(main, itemId) {
  replace(main, h("p", { class: "muted" }, "Loading product…"));
  let item;
  try {
    item = await api.item(itemId);
  } catch (err) {
    replace(
      main,
      h(
        "section",
        { class: "page", "aria-labelledby": "page-heading" },
        h("h1", { id: "page-heading" }, "Product not found"),
        h("p", {}, err instanceof Error ? err.message : String(err)),
        h("a", { href: "#/" }, "Back to your recommendations"),
      ),
    );
    return;
  }
  const similarHolder = h("div", {}, h("p", { class: "muted" }, "Finding similar products…"));
  replace(
    main,
    h(
      "article",
      { class: "page item-page", "aria-labelledby": "page-heading", "data-testid": "item-page" },
      h("p", {}, h("a", { href: "#/" }, "← Recommendations")),
      h("h1", { id: "page-heading" }, item.title ?? itemId),
      item.attributes?.description ? h("p", { class: "description" }, String(item.attributes.description)) : null,
      detailsList(item),
      shopperActions(item),
      h("h2", {}, "Similar products"),
      similarHolder,
    ),
  );
  try {
    const data = await api.similar(itemId, 8);
    replace(similarHolder, similarList(Array.isArray(data) ? data : (data?.items ?? [])));
  } catch (err) {
    replace(similarHolder, h("p", { class: "form-error" }, "Could not load similar products."));
    announceError(err);
  }
}
