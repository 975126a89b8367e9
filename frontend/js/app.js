// Entry point: hash routes -> page renderers, plus the header's session widget.

import { ApiError, api, hasSessionCookie, rememberCsrf } from "./api.js";
import { h, replace } from "./dom.js";
import { currentSession, onSessionChange, setSession } from "./session.js";
import { announceError } from "./status.js";
import { renderHome } from "./views/home.js";
import { renderItem } from "./views/item.js";
import { renderProfile } from "./views/profile.js";
import { renderSegments } from "./views/segments.js";

const TITLES = { home: "For you", new: "New shopper", segments: "Segments", item: "Product" };

/** Parse "#/item/42" into {name: "item", param: "42"}. */
export function parseRoute(hash) {
  const parts = hash.replace(/^#\/?/, "").split("/");
  const name = parts[0] || "home";
  const param = parts.length > 1 ? decodeURIComponent(parts.slice(1).join("/")) : undefined;
  return { name, param };
}

function renderSessionWidget() {
  const holder = document.getElementById("session");
  if (!holder) return;
  const session = currentSession();
  if (!session) {
    replace(holder, h("a", { href: "#/", class: "btn btn-small" }, "Log in"));
    return;
  }
  const logout = h("button", { type: "button", class: "btn btn-small" }, "Log out");
  logout.addEventListener("click", async () => {
    try {
      await api.logout();
    } catch (err) {
      // A demo session or an expired cookie has nothing to end server-side; still sign out here.
      if (!(err && typeof err === "object" && "status" in err && [401, 403].includes(err.status))) announceError(err);
    }
    setSession(null);
    if (parseRoute(window.location.hash).name === "home") route();
    else window.location.hash = "#/";
  });
  replace(
    holder,
    h("span", { class: "who" }, session.mode === "demo" ? "Demo shopper " : "Signed in as ", h("strong", {}, session.label)),
    logout,
  );
}

function markActiveNav(name) {
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.getAttribute("data-nav") === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function route() {
  const main = document.getElementById("main");
  if (!main) return;
  const { name, param } = parseRoute(window.location.hash);
  markActiveNav(name);
  document.title = `${TITLES[name] ?? "explainrec"} · explainrec`;
  if (name === "new") renderProfile(main);
  else if (name === "segments") renderSegments(main);
  else if (name === "item" && param) renderItem(main, param);
  else renderHome(main);
  // Move focus to the new page so keyboard and screen-reader users land on its content.
  main.focus({ preventScroll: false });
}

/** Trust the cookie over the tab's memory: adopt a live session, forget an expired one. */
async function syncSession() {
  const stored = currentSession();
  if (!stored && !hasSessionCookie()) return; // nothing to confirm; skip a guaranteed 401
  try {
    const me = await api.me();
    const userId = String(me.user_id);
    if (stored?.userId !== userId) setSession({ userId, mode: me.known_to_model ? "demo" : "account", label: userId });
    rememberCsrf(me);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) setSession(null);
  }
}

window.addEventListener("hashchange", route);
onSessionChange(renderSessionWidget);
syncSession().finally(() => {
  renderSessionWidget();
  route();
});
