// One live region for page-level messages, so screen readers hear errors and confirmations.

let clearTimer = 0;

/**
 * Show a message in the status bar.
 * @param {string} message
 * @param {"info" | "error" | "success"} [kind]
 */
export function announce(message, kind = "info") {
  const region = document.getElementById("status");
  if (!region) return;
  window.clearTimeout(clearTimer);
  region.textContent = message;
  region.dataset.kind = kind;
  region.hidden = !message;
  if (message && kind !== "error") {
    clearTimer = window.setTimeout(() => announce(""), 6000);
  }
}

/** Render an error as a message the shopper can act on. */
export function announceError(error) {
  const message = error instanceof Error ? error.message : String(error);
  announce(message || "Something went wrong.", "error");
}
