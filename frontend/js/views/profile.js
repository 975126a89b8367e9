// New-shopper page: a short profile form -> cold-start picks with explanations, then an offer to
// keep them by creating an account with the same profile.

import { api } from "../api.js";
import { catalogueCategories } from "../catalogue.js";
import { h, replace } from "../dom.js";
import { setSession } from "../session.js";
import { announce, announceError } from "../status.js";
import { describeChange, recList } from "./recs.js";

const PICKS = 10;
// Mirrors the backend's signup rule so the shopper hears about it before submitting.
const USERNAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{2,39}$/;
const GENDER_LABELS = { F: "Female", M: "Male", female: "Female", male: "Male" };

function field(id, label, control, hint) {
  const hintEl = hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hintEl);
}

/** Gender values the model was trained with, read from the segments' gender mix when available. */
async function genderOptions() {
  try {
    const data = await api.segments();
    const values = new Set();
    for (const segment of data?.segments ?? []) {
      for (const key of Object.keys(segment?.gender_mix ?? segment?.gender ?? {})) values.add(key);
    }
    if (values.size) return [...values].sort();
  } catch {
    // The form still works with free values; the model maps unseen values to "unknown".
  }
  return ["F", "M"];
}

function profileForm(onSubmit) {
  const interests = h("div", { class: "checkbox-grid", id: "interests-options" }, h("p", { class: "muted" }, "Loading categories…"));
  const gender = h("select", { id: "profile-gender", name: "gender" }, h("option", { value: "" }, "Prefer not to say"));
  const error = h("p", { class: "form-error", role: "alert" });
  const form = h(
    "form",
    { class: "card form profile-form", "data-testid": "profile-form", "aria-labelledby": "profile-heading", novalidate: true },
    h("h2", { id: "profile-heading" }, "About you"),
    h(
      "div",
      { class: "field-row" },
      field(
        "profile-age",
        "Age",
        h("input", { id: "profile-age", name: "age", type: "number", min: "13", max: "120", inputmode: "numeric" }),
      ),
      field("profile-gender", "Gender", gender),
    ),
    h(
      "div",
      { class: "field-row" },
      field(
        "profile-occupation",
        "Occupation",
        h("input", { id: "profile-occupation", name: "occupation", autocomplete: "organization-title" }),
      ),
      field(
        "profile-location",
        "Location",
        h("input", { id: "profile-location", name: "location", autocomplete: "postal-code" }),
        "A region, city or postcode.",
      ),
    ),
    h("fieldset", { class: "interests" }, h("legend", {}, "What are you interested in?"), interests),
    error,
    h("button", { type: "submit", class: "btn btn-primary" }, "Show my picks"),
  );

  genderOptions().then((values) => {
    for (const value of values) gender.append(h("option", { value }, GENDER_LABELS[value] ?? value));
  });
  catalogueCategories()
    .then((names) => {
      replace(
        interests,
        names.map((name, index) =>
          h(
            "label",
            { class: "checkbox", for: `interest-${index}` },
            h("input", { type: "checkbox", id: `interest-${index}`, name: "interests", value: name }),
            h("span", {}, name),
          ),
        ),
      );
    })
    .catch(() => replace(interests, h("p", { class: "form-error" }, "Could not load the catalogue's categories.")));

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const ageText = String(data.get("age") ?? "").trim();
    const age = ageText ? Number(ageText) : null;
    if (age !== null && (!Number.isInteger(age) || age < 13 || age > 120)) {
      error.textContent = "Age must be a whole number between 13 and 120.";
      form.querySelector("#profile-age")?.focus();
      return;
    }
    const chosen = data.getAll("interests").map(String);
    if (!chosen.length) {
      error.textContent = "Pick at least one interest so we know where to start.";
      form.querySelector("#interests-options input")?.focus();
      return;
    }
    error.textContent = "";
    const text = (name) => String(data.get(name) ?? "").trim() || null;
    onSubmit({
      age,
      gender: text("gender"),
      occupation: text("occupation"),
      location: text("location"),
      interests: chosen,
    });
  });
  return form;
}

/** Account creation with the profile already given; signs the shopper in on success. */
function signupForm(profile, likedItems) {
  const error = h("p", { class: "form-error", role: "alert" });
  const form = h(
    "form",
    { class: "card form", "data-testid": "signup-form", "aria-labelledby": "signup-heading", novalidate: true },
    h("h2", { id: "signup-heading" }, "Keep these picks"),
    h("p", {}, "Create an account and your likes will shape what you see next."),
    field(
      "signup-user",
      "Choose a shopper id",
      h("input", { id: "signup-user", name: "username", autocomplete: "username", required: true, maxlength: "40" }),
      "3–40 letters, digits, dots, dashes or underscores.",
    ),
    field(
      "signup-password",
      "Password",
      h("input", {
        id: "signup-password",
        name: "password",
        type: "password",
        autocomplete: "new-password",
        required: true,
        minlength: "8",
      }),
      "At least 8 characters.",
    ),
    error,
    h("button", { type: "submit", class: "btn btn-primary" }, "Create account"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const username = String(data.get("username") ?? "").trim();
    const password = String(data.get("password") ?? "");
    if (!USERNAME_RE.test(username)) {
      error.textContent = "Shopper id: 3–40 letters, digits, dots, dashes or underscores, starting with a letter or digit.";
      return;
    }
    if (password.length < 8) {
      error.textContent = "Password must be at least 8 characters.";
      return;
    }
    error.textContent = "";
    try {
      const result = await api.signup({ username, password, profile });
      const id = String(result?.user_id ?? username);
      setSession({ userId: id, mode: "account", label: id });
      // Likes given before the account existed become the new shopper's first feedback.
      for (const itemId of likedItems()) await api.feedback(id, itemId, "like");
      announce(`Welcome, ${id}! Your account is ready.`, "success");
      window.location.hash = "#/";
    } catch (err) {
      error.textContent = err instanceof Error ? err.message : String(err);
    }
  });
  return form;
}

/** Route handler for #/new. */
export function renderProfile(main) {
  const results = h(
    "div",
    { class: "results" },
    h(
      "div",
      { class: "card placeholder" },
      h("h2", {}, "Your picks will appear here"),
      h(
        "p",
        { class: "muted" },
        "The model turns your answers into a shopper vector and finds the closest products. " +
          "Each pick says why it was chosen, and liking one updates the rest.",
      ),
    ),
  );
  const signupHolder = h("div", { class: "signup-holder" });
  /** @type {string[]} */
  const liked = [];
  /** @type {Set<string>} */
  const dismissed = new Set();
  let profile = null;
  let shownIds = new Set();

  async function loadPicks({ announceChange = false } = {}) {
    results.setAttribute("aria-busy", "true");
    try {
      // Ask for extra picks so the ones dismissed here can be dropped and the list stays full.
      const data = await api.coldStart(profile, { k: PICKS + dismissed.size, likedItems: liked });
      const items = (data?.items ?? []).filter((item) => !dismissed.has(item.item_id)).slice(0, PICKS);
      const previous = shownIds;
      replace(
        results,
        h("h2", { id: "picks-heading" }, "Picks for you"),
        data?.segment?.name ? h("p", { class: "subtitle" }, `Closest segment: “${data.segment.name}”`) : null,
        recList(items, { previousIds: announceChange ? previous : undefined, onFeedback, label: "Picks for you" }),
      );
      shownIds = new Set(items.map((item) => item.item_id));
      // The status region speaks; the list itself is not live, or every card would be read out.
      announce(announceChange ? describeChange(previous, items) : `${items.length} picks ready.`, "success");
    } catch (err) {
      replace(results, h("p", { class: "form-error" }, "Could not load picks."));
      announceError(err);
    } finally {
      results.setAttribute("aria-busy", "false");
    }
  }

  // Without an account, feedback stays on this page: likes steer the cold-start vector and are
  // sent along on signup; dismissals hide the item.
  async function onFeedback(item, event) {
    if (event === "dismiss") dismissed.add(item.item_id);
    else if (!liked.includes(item.item_id)) liked.push(item.item_id);
    await loadPicks({ announceChange: true });
  }

  replace(
    main,
    h(
      "section",
      { class: "page", "aria-labelledby": "page-heading" },
      h("h1", { id: "page-heading" }, "New here? Start with a profile"),
      h("p", { class: "subtitle" }, "No history needed: the model starts from what you tell it."),
      h(
        "div",
        { class: "two-col" },
        h(
          "div",
          {},
          profileForm(async (next) => {
            profile = next;
            liked.length = 0;
            dismissed.clear();
            shownIds = new Set();
            await loadPicks();
            replace(signupHolder, signupForm(profile, () => [...liked]));
            results.querySelector("h2")?.focus?.();
          }),
          signupHolder,
        ),
        results,
      ),
    ),
  );
}
