// Tiny DOM builder. Every server value reaches the page through text nodes or attribute setters,
// never through HTML parsing, so a catalogue title like "<script>" can only ever render as text.

/**
 * Create an element.
 * @param {string} tag
 * @param {Record<string, unknown>} [attrs] plain attributes; `class`, `dataset`, `on*` handlers,
 *   and boolean attributes (true adds, false/null/undefined skips) are understood.
 * @param {...(Node|string|number|null|undefined|false|Array<any>)} children strings become text nodes.
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") {
      el.className = String(value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2).toLowerCase(), /** @type {EventListener} */ (value));
    } else if (name === "style" && typeof value === "object") {
      Object.assign(el.style, value);
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

/** Append children (text for strings/numbers, skipping empty values, flattening arrays). */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replace all children of `parent`. */
export function replace(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

/** Format a price; catalogues without prices (MovieLens) give null. */
export function formatPrice(price) {
  if (price === null || price === undefined || Number.isNaN(Number(price))) return "";
  return new Intl.NumberFormat(undefined, { style: "currency", currency: "USD" }).format(Number(price));
}

/** A short, readable number (scores, shares, metrics). */
export function formatNumber(value, digits = 3) {
  if (value === null || value === undefined || value === "") return "–";
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  if (Number.isInteger(n)) return n.toLocaleString();
  const fixed = n.toFixed(digits);
  return Number(fixed) === 0 ? (0).toFixed(digits) : fixed; // no "-0.00" for tiny negatives
}

/** A percentage from a 0..1 share. */
export function formatShare(share) {
  const n = Number(share);
  return Number.isFinite(n) ? `${(n * 100).toFixed(1)}%` : "–";
}
