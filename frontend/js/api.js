// The one place that knows how the UI talks to the backend: base path, cookie auth and the CSRF
// header on state-changing requests. Adapt names here if the backend renames them.

const API_BASE = "/api/v1";
// The session cookie is HttpOnly; the CSRF token cookie is readable so we can echo it in a header
// (double-submit), which a cross-site form post cannot do.
const CSRF_COOKIE = "csrf_token";
const CSRF_HEADER = "X-CSRF-Token";
const UNSAFE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** An API failure carrying the HTTP status and the server's message. */
export class ApiError extends Error {
  /** @param {number} status @param {string} message @param {unknown} body */
  constructor(status, message, body) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

let csrfFromBody = "";

function readCookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

/** Whether this browser holds a session (the readable CSRF cookie travels with the HttpOnly one). */
export function hasSessionCookie() {
  return Boolean(readCookie(CSRF_COOKIE));
}

/** Remember a CSRF token returned in a response body (some backends send it there, not as a cookie). */
export function rememberCsrf(body) {
  if (body && typeof body === "object" && typeof body.csrf_token === "string") {
    csrfFromBody = body.csrf_token;
  }
}

/** Pull a readable message out of FastAPI-style error bodies ({detail: str | [{msg, loc}]}). */
function errorMessage(status, body) {
  if (body && typeof body === "object") {
    const detail = body.detail ?? body.error ?? body.message;
    if (typeof detail === "string") return detail;
    if (detail && typeof detail === "object" && typeof detail.message === "string") return detail.message;
    if (Array.isArray(detail) && detail.length) {
      return detail
        .map((d) => {
          const where = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body").join(".") : "";
          return where ? `${where}: ${d.msg}` : String(d.msg ?? d);
        })
        .join("; ");
    }
  }
  return `Request failed (HTTP ${status})`;
}

/**
 * Call the API and return parsed JSON (or null for empty bodies).
 * @param {string} path relative to /api/v1, e.g. "/items/42"
 * @param {{method?: string, query?: Record<string, unknown>, body?: unknown}} [options]
 */
export async function apiFetch(path, { method = "GET", query, body } = {}) {
  const url = new URL(API_BASE + path, window.location.origin);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null || value === "") continue;
    url.searchParams.set(key, String(value));
  }
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (UNSAFE_METHODS.has(method)) {
    const token = readCookie(CSRF_COOKIE) || csrfFromBody;
    if (token) headers[CSRF_HEADER] = token;
  }
  const response = await fetch(url, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { detail: text.slice(0, 200) };
    }
  }
  if (!response.ok) throw new ApiError(response.status, errorMessage(response.status, parsed), parsed);
  rememberCsrf(parsed);
  return parsed;
}

// Route wrappers: names mirror issue 7's contract so a reader can match them one to one.

export const api = {
  recommendations: (userId, { k = 10, explain = true, category, minPrice, maxPrice } = {}) =>
    apiFetch("/recommendations", {
      query: { user_id: userId, k, explain, category, min_price: minPrice, max_price: maxPrice },
    }),
  coldStart: (profile, { k = 10, likedItems = [] } = {}) =>
    apiFetch("/recommendations/cold-start", {
      method: "POST",
      body: { profile, liked_items: likedItems, k, explain: true },
    }),
  item: (itemId) => apiFetch(`/items/${encodeURIComponent(itemId)}`),
  similar: (itemId, k = 8) => apiFetch(`/items/${encodeURIComponent(itemId)}/similar`, { query: { k } }),
  items: ({ q, category } = {}) => apiFetch("/items", { query: { q, category } }),
  feedback: (userId, itemId, event) =>
    apiFetch("/feedback", { method: "POST", body: { user_id: userId, item_id: itemId, event } }),
  segments: () => apiFetch("/segments"),
  model: () => apiFetch("/model"),
  segment: (segmentId) => apiFetch(`/segments/${encodeURIComponent(segmentId)}`),
  user: (userId) => apiFetch(`/users/${encodeURIComponent(userId)}`),
  signup: ({ username, password, profile }) =>
    apiFetch("/auth/signup", { method: "POST", body: { username, password, profile } }),
  login: ({ username, password }) => apiFetch("/auth/login", { method: "POST", body: { username, password } }),
  demoLogin: (userId) => apiFetch("/auth/demo", { method: "POST", body: { user_id: userId } }),
  demoUsers: (limit = 12) => apiFetch("/auth/demo-users", { query: { limit } }),
  me: () => apiFetch("/auth/me"),
  logout: () => apiFetch("/auth/logout", { method: "POST" }),
};
