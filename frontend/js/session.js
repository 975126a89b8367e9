// Who the shopper currently is. The auth cookie is the source of truth for the server; this keeps
// the user id the UI needs for its requests, surviving reloads within the tab.

const STORAGE_KEY = "explainrec.session";

/** @typedef {{userId: string, mode: "account" | "demo", label: string}} Session */

/** @type {Set<(s: Session | null) => void>} */
const listeners = new Set();

/** @returns {Session | null} */
export function currentSession() {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY);
    if (!raw) return null;
    const parsed = JSON.parse(raw);
    return typeof parsed?.userId === "string" ? parsed : null;
  } catch {
    return null;
  }
}

/** @param {Session | null} next */
export function setSession(next) {
  if (next) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(next));
  else sessionStorage.removeItem(STORAGE_KEY);
  for (const listener of listeners) listener(next);
}

/** @param {(s: Session | null) => void} listener */
export function onSessionChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
