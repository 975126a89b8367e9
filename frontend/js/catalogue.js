// The catalogue's category names, for the interests picker and the category filter. Fetched once
// per page load; prefers a `categories` list from the API, else derives it from the items.

import { api } from "./api.js";

/** @type {Promise<string[]> | null} */
let cached = null;

/** @returns {Promise<string[]>} sorted, unique category names */
export function catalogueCategories() {
  if (!cached) {
    cached = api
      .items({})
      .then((data) => {
        const names = new Set();
        if (Array.isArray(data?.categories)) {
          for (const entry of data.categories) names.add(String(entry?.name ?? entry));
        }
        const items = Array.isArray(data) ? data : (data?.items ?? []);
        for (const item of items) for (const category of item?.categories ?? []) names.add(String(category));
        return [...names].filter(Boolean).sort((a, b) => a.localeCompare(b));
      })
      .catch((err) => {
        cached = null; // let a later page retry
        throw err;
      });
  }
  return cached;
}
