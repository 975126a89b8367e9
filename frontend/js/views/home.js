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
  "cold-start": "from your profile and feedback",
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
    // 404: the server runs without demo mode, so there is nothing to offer here.
    if (err instanceof ApiError && err.status === 404) panel.hidden = true;
    else panel.append(h("p", { class: "muted" }, "Demo shoppers are unavailable right now."));
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

const ACTIVITY_VERBS = {
  like: "Liked",
  cart: "Added to cart",
  purchase: "Bought",
  dismiss: "Not for me:",
  rating: "Rated",
  click: "Viewed",
  view: "Viewed",
};

/** The shopper's latest feedback, newest first, so they can see what the list is reacting to. */
async function renderActivity(holder, userId) {
  let user;
  try {
    user = await api.user(userId);
  } catch {
    holder.hidden = true; // a shopper with no stored data yet has nothing to show
    return;
  }
  const events = (user?.feedback ?? []).slice(0, 6);
  const history = (user?.history ?? []).slice(0, 6);
  holder.hidden = !events.length && !history.length;
  const link = (item) => h("a", { href: `#/item/${encodeURIComponent(item.item_id)}` }, item.title ?? item.item_id);
  // Collapsed on small screens so the recommendations stay near the top.
  const wasOpen = holder.querySelector("details")?.open;
  const open = wasOpen ?? window.matchMedia("(min-width: 700px)").matches;
  replace(
    holder,
    h(
      "details",
      { open },
      h("summary", { id: "activity-heading" }, `Your recent activity (${events.length + history.length})`),
      events.length
        ? h(
            "ul",
            { class: "chips", "data-testid": "activity-list" },
            events.map((event) =>
              h(
                "li",
                { class: `chip chip-activity chip-${event.event}` },
                `${ACTIVITY_VERBS[event.event] ?? event.event} `,
                link(event),
              ),
            ),
          )
        : null,
      history.length
        ? h(
            "p",
            { class: "muted small" },
            "From your history: ",
            history.flatMap((item, index) => (index ? [", ", link(item)] : [link(item)])),
          )
        : null,
    ),
  );
}

/** Recommendations for the signed-in (or demo) shopper, refreshed after each piece of feedback. */
function shopperPage(main, session) {
  const heading = h("h1", { id: "page-heading" }, "Recommended for you");
  const subtitle = h("p", { class: "subtitle" });
  const listHolder = h("div", { class: "list-holder", "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));
  const activity = h("section", { class: "activity", "aria-labelledby": "activity-heading", hidden: true });
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
      renderActivity(activity, session.userId);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        setSession(null);
        renderHome(main);
        announce("Your session has ended. Please log in again.", "error");
        return;
      }
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
      activity,
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
