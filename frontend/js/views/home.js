// Shopper home: sign in (password or demo shopper), then "Recommended for you" with explained
// product cards; feedback is sent and the list is fetched again straight away.

import { ApiError, api } from "../api.js";
import { catalogueCategories } from "../catalogue.js";
import { h, replace } from "../dom.js";
import { currentSession, setSession } from "../session.js";
import { announce, announceError } from "../status.js";
import { describeChange, recList } from "./recs.js";

const PAGE_SIZE = 10;
const STRATEGY_LABELS = {
  personalized: "personalised from your history",
  "cold-start": "from your profile (no history yet)",
  popularity: "popular picks (we know nothing about you yet)",
};

/** Sign-in panel: account login, a demo-shopper picker, and the way to the new-shopper form. */
function signInPanel(main) {
  const error = h("p", { class: "form-error", role: "alert", id: "login-error" });
  const form = h(
    "form",
    { class: "card form", "data-testid": "login-form", "aria-labelledby": "login-heading", novalidate: true },
    h("h2", { id: "login-heading" }, "Log in"),
    h(
      "div",
      { class: "field" },
      h("label", { for: "login-user" }, "Shopper id"),
      h("input", { id: "login-user", name: "username", autocomplete: "username", required: true }),
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: "login-password" }, "Password"),
      h("input", {
        id: "login-password",
        name: "password",
        type: "password",
        autocomplete: "current-password",
        required: true,
        "aria-describedby": "login-error",
      }),
    ),
    error,
    h("button", { type: "submit", class: "btn btn-primary" }, "Log in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const userId = String(data.get("username") ?? "").trim();
    const password = String(data.get("password") ?? "");
    if (!userId || !password) {
      error.textContent = "Enter your shopper id and password.";
      return;
    }
    error.textContent = "";
    try {
      const result = await api.login({ username: userId, password });
      const id = String(result?.user_id ?? userId);
      setSession({ userId: id, mode: "account", label: id });
      renderHome(main);
    } catch (err) {
      error.textContent = err instanceof Error ? err.message : String(err);
    }
  });

  const demoPanel = h(
    "section",
    { class: "card form", "aria-labelledby": "demo-heading" },
    h("h2", { id: "demo-heading" }, "Try a demo shopper"),
    h("p", { class: "muted" }, "Browse as one of the shoppers the model was trained on."),
  );
  fillDemoPicker(main, demoPanel);

  return h(
    "div",
    { class: "sign-in" },
    form,
    demoPanel,
    h(
      "section",
      { class: "card form", "aria-labelledby": "new-heading" },
      h("h2", { id: "new-heading" }, "New here?"),
      h("p", {}, "Tell us a little about yourself and get picks right away — no history needed."),
      h("a", { class: "btn btn-primary", href: "#/new" }, "Start with a profile"),
    ),
  );
}

/** Demo mode: the backend lists a few model shoppers, spread over segments. */
async function fillDemoPicker(main, panel) {
  let users = [];
  try {
    users = (await api.demoUsers(12))?.users ?? [];
  } catch (err) {
    const off = err instanceof ApiError && err.status === 404;
    panel.append(h("p", { class: "muted" }, off ? "Demo shoppers are off on this server." : "Demo shoppers are unavailable right now."));
    return;
  }
  if (!users.length) {
    panel.append(h("p", { class: "muted" }, "No demo shoppers in this model."));
    return;
  }
  const select = h(
    "select",
    { id: "demo-user", name: "demo_user" },
    users.map((user) =>
      h(
        "option",
        { value: user.user_id },
        `${user.user_id} — ${user.segment_name || `segment ${user.segment}`} (${user.history_size} items)`,
      ),
    ),
  );
  const error = h("p", { class: "form-error", role: "alert" });
  const form = h(
    "form",
    { class: "inline-form", "data-testid": "demo-form" },
    h("div", { class: "field" }, h("label", { for: "demo-user" }, "Shopper"), select),
    error,
    h("button", { type: "submit", class: "btn" }, "Shop as this shopper"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const result = await api.demoLogin(select.value);
      const id = String(result?.user_id ?? select.value);
      setSession({ userId: id, mode: "demo", label: id });
      renderHome(main);
    } catch (err) {
      error.textContent = err instanceof Error ? err.message : String(err);
    }
  });
  panel.append(form);
}

/** Filters the API supports: a category and a price range. */
function filterForm(state, onChange) {
  const category = h("select", { id: "filter-category", name: "category" }, h("option", { value: "" }, "Any"));
  catalogueCategories()
    .then((names) => {
      for (const name of names) category.append(h("option", { value: name }, name));
    })
    .catch(() => category.setAttribute("disabled", ""));
  const maxPrice = h("input", {
    id: "filter-max-price",
    name: "max_price",
    type: "number",
    min: "0",
    step: "any",
    inputmode: "decimal",
    value: state.maxPrice ?? "",
    placeholder: "any",
  });
  const form = h(
    "form",
    { class: "filters", "aria-label": "Filter recommendations" },
    h("div", { class: "field" }, h("label", { for: "filter-category" }, "Category"), category),
    h("div", { class: "field" }, h("label", { for: "filter-max-price" }, "Max price"), maxPrice),
    h("button", { type: "submit", class: "btn" }, "Apply"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onChange({ category: category.value || undefined, maxPrice: maxPrice.value || undefined });
  });
  return form;
}

/** Recommendations for the signed-in (or demo) shopper, refreshed after each piece of feedback. */
function shopperPage(main, session) {
  const heading = h("h1", { id: "page-heading" }, "Recommended for you");
  const subtitle = h("p", { class: "subtitle" });
  const listHolder = h("div", { class: "list-holder", "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));
  const filters = {};
  /** @type {Set<string>} */
  let shownIds = new Set();

  async function load({ announceChange = false } = {}) {
    listHolder.setAttribute("aria-busy", "true");
    try {
      const data = await api.recommendations(session.userId, { k: PAGE_SIZE, explain: true, ...filters });
      const items = Array.isArray(data?.items) ? data.items : [];
      const segment = data?.segment;
      replace(
        subtitle,
        `Shopper ${session.userId}`,
        STRATEGY_LABELS[data?.strategy] ? ` · ${STRATEGY_LABELS[data.strategy]}` : "",
        segment && segment.name ? ` · segment “${segment.name}”` : "",
        data?.model_version ? ` · model ${data.model_version}` : "",
      );
      const previous = shownIds;
      replace(listHolder, recList(items, { previousIds: announceChange ? previous : undefined, onFeedback }));
      shownIds = new Set(items.map((item) => item.item_id));
      if (announceChange) announce(describeChange(previous, items), "success");
    } catch (err) {
      replace(listHolder, h("p", { class: "form-error" }, "Could not load recommendations."));
      announceError(err);
    } finally {
      listHolder.setAttribute("aria-busy", "false");
    }
  }

  async function onFeedback(item, event, card) {
    for (const button of card.querySelectorAll("button")) button.disabled = true;
    card.classList.add("is-pending");
    try {
      await api.feedback(session.userId, item.item_id, event);
    } catch (err) {
      announceError(err);
      for (const button of card.querySelectorAll("button")) button.disabled = false;
      card.classList.remove("is-pending");
      return;
    }
    await load({ announceChange: true });
    listHolder.querySelector("h3 a")?.focus();
  }

  replace(
    main,
    h(
      "section",
      { class: "page", "aria-labelledby": "page-heading" },
      h("div", { class: "page-head" }, h("div", {}, heading, subtitle), filterForm(filters, (next) => {
        Object.assign(filters, next);
        load();
      })),
      listHolder,
    ),
  );
  load();
}

/** Route handler for #/. */
export function renderHome(main) {
  const session = currentSession();
  if (session) {
    shopperPage(main, session);
    return;
  }
  replace(
    main,
    h(
      "section",
      { class: "page", "aria-labelledby": "page-heading" },
      h("h1", { id: "page-heading" }, "Recommendations that explain themselves"),
      h("p", { class: "subtitle" }, "Log in, shop as a demo shopper, or start fresh with a short profile."),
      signInPanel(main),
    ),
  );
}
