// Segments dashboard: users in the model's PCA plane coloured by segment (Chart.js scatter, one
// dataset per segment plus one for the centroids), a card per segment, and the model's metrics.

import { api } from "../api.js";
import { formatNumber, formatShare, h, replace } from "../dom.js";
import { announceError } from "../status.js";

// Okabe–Ito palette: distinguishable with the common colour-vision deficiencies.
const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];
// Shapes repeat the colour information so segments stay distinct without colour.
const POINT_STYLES = ["circle", "triangle", "rect", "rectRot", "star", "crossRot", "rectRounded", "cross"];

/** @typedef {{id: string, name: string, size?: number, share?: number, raw: any}} Segment */

function segmentId(segment) {
  return String(segment?.id ?? segment?.segment_id ?? segment?.segment ?? segment?.label ?? "");
}

/** Normalise the API's segment list and points into what the chart and cards need. */
export function normaliseSegments(data) {
  const segments = (data?.segments ?? []).map((raw) => ({
    id: segmentId(raw),
    name: String(raw?.name ?? `Segment ${segmentId(raw)}`),
    size: raw?.size,
    share: raw?.share,
    raw,
  }));
  const points = (data?.points ?? []).map((p) => ({
    x: Number(p.x ?? p.pca?.[0] ?? p[0]),
    y: Number(p.y ?? p.pca?.[1] ?? p[1]),
    segment: String(p.segment ?? p.segment_id ?? ""),
    userId: p.user_id === undefined ? undefined : String(p.user_id),
  }));
  const centroids = segments.map((segment) => {
    const c = segment.raw?.centroid ?? segment.raw?.centroid_2d ?? segment.raw?.pca_centroid;
    const fromList = (data?.centroids ?? []).find((entry) => segmentId(entry) === segment.id);
    const source = c ?? fromList;
    if (!source) return null;
    const x = Number(source.x ?? source[0]);
    const y = Number(source.y ?? source[1]);
    return Number.isFinite(x) && Number.isFinite(y) ? { x, y, segment: segment.id } : null;
  });
  return { segments, points, centroids };
}

function colourOf(index) {
  return PALETTE[index % PALETTE.length];
}

/** Top entries of a list that may hold strings or {name/title, share/count} objects. */
function topEntries(list, limit = 5) {
  if (!Array.isArray(list)) {
    if (list && typeof list === "object") {
      return Object.entries(list)
        .slice(0, limit)
        .map(([name, value]) => ({ name, value }));
    }
    return [];
  }
  return list.slice(0, limit).map((entry) =>
    typeof entry === "object" && entry
      ? {
          name: String(entry.title ?? entry.name ?? entry.category ?? entry.item_id ?? ""),
          value: entry.share ?? entry.count ?? entry.lift,
          itemId: entry.item_id,
        }
      : { name: String(entry) },
  );
}

function mixText(mix) {
  if (!mix || typeof mix !== "object") return "–";
  return Object.entries(mix)
    .map(([key, value]) =>
      typeof value === "number" && value <= 1 ? `${key} ${Math.round(value * 100)}%` : `${key} ${formatNumber(value, 1)}`,
    )
    .join(", ");
}

function rfmRows(rfm) {
  if (!rfm || typeof rfm !== "object") return [];
  // The bundle stores medians per shopper; the card's note says so once.
  const labels = { recency_days: "Recency (days)", frequency: "Frequency", monetary: "Monetary" };
  return Object.entries(rfm).map(([key, value]) => {
    const shown = value && typeof value === "object" ? (value.mean ?? value.median ?? value.p50) : value;
    return [labels[key] ?? key, formatNumber(shown, 1)];
  });
}

function segmentCard(segment, index, onSelect) {
  const raw = segment.raw ?? {};
  const categories = topEntries(raw.top_categories, 4);
  const items = topEntries(raw.top_items, 4);
  const rows = [
    ["Size", `${formatNumber(segment.size ?? raw.n_users)}${segment.share !== undefined ? ` (${formatShare(segment.share)})` : ""}`],
    ["Age", `${mixText(raw.age_mix ?? raw.age)}${raw.mean_age ? ` (mean ${formatNumber(raw.mean_age, 0)})` : ""}`],
    ["Gender", mixText(raw.gender_mix ?? raw.gender)],
    ...rfmRows(raw.rfm),
  ];
  const card = h(
    "li",
    {
      class: "card segment-card",
      "data-testid": "segment-card",
      "data-segment-id": segment.id,
      style: { borderTopColor: colourOf(index) },
    },
    h(
      "h3",
      {},
      h(
        "button",
        {
          type: "button",
          class: "segment-select",
          "aria-pressed": "false",
          "aria-label": `Show segment ${segment.name} on the plot`,
          onclick: () => onSelect(segment.id),
        },
        h("span", { class: "swatch", style: { background: colourOf(index) }, "aria-hidden": "true" }),
        segment.name,
      ),
    ),
    h("dl", { class: "details compact" }, rows.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
    raw.rfm && Object.keys(raw.rfm).length ? h("p", { class: "muted small" }, "Recency, frequency and monetary are medians per shopper.") : null,
    categories.length
      ? h(
          "div",
          {},
          h("h4", {}, "Top categories"),
          h(
            "ul",
            { class: "chips" },
            categories.map((c) => h("li", { class: "chip" }, c.name, c.value !== undefined ? ` ${formatShare(c.value)}` : "")),
          ),
        )
      : null,
    items.length
      ? h(
          "div",
          {},
          h("h4", {}, "Top products"),
          h(
            "ol",
            { class: "top-items" },
            items.map((item) =>
              h("li", {}, item.itemId ? h("a", { href: `#/item/${encodeURIComponent(item.itemId)}` }, item.name) : item.name),
            ),
          ),
        )
      : null,
  );
  card.addEventListener("mouseenter", () => onSelect(segment.id, { hover: true }));
  return card;
}

const METHOD_LABELS = { kmeans: "K-Means", ward: "Ward (agglomerative)" };
const RFM_LABELS = {
  rfm_k: "RFM segments (k)",
  ari: "Agreement with RFM (ARI)",
  nmi: "Agreement with RFM (NMI)",
};

/** The bundle's evaluation metrics (GET /model) and how the segments were chosen (GET /segments). */
function metricsPanel(segmentsData, model) {
  const rows = [];
  for (const [key, value] of Object.entries(model?.metrics ?? {})) rows.push([key, formatNumber(value, 4)]);
  const quality = [];
  if (segmentsData?.method) quality.push(["Method", METHOD_LABELS[segmentsData.method] ?? segmentsData.method]);
  if (segmentsData?.k !== undefined) quality.push(["Segments (k)", formatNumber(segmentsData.k)]);
  if (segmentsData?.silhouette !== null && segmentsData?.silhouette !== undefined) {
    quality.push(["Silhouette", formatNumber(segmentsData.silhouette, 3)]);
  }
  for (const [key, value] of Object.entries(segmentsData?.rfm_comparison ?? {})) {
    quality.push([RFM_LABELS[key] ?? `RFM ${key.replaceAll("_", " ")}`, formatNumber(value, 3)]);
  }
  const table = (caption, entries) =>
    h(
      "table",
      { class: "metrics-table" },
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Measure"), h("th", { scope: "col" }, "Value"))),
      h("tbody", {}, entries.map(([key, value]) => h("tr", {}, h("th", { scope: "row" }, key), h("td", {}, value)))),
    );
  const facts = [];
  if (model?.dataset_name) facts.push(`data set ${model.dataset_name}`);
  if (model?.counts?.users !== undefined) facts.push(`${formatNumber(model.counts.users)} shoppers`);
  if (model?.counts?.items !== undefined) facts.push(`${formatNumber(model.counts.items)} products`);
  return h(
    "section",
    { class: "card metrics", "aria-labelledby": "metrics-heading", "data-testid": "model-metrics" },
    h("h2", { id: "metrics-heading" }, "Model evaluation"),
    h("p", { class: "muted small" }, `Bundle ${segmentsData?.model_version ?? model?.model_version ?? "?"}`, facts.length ? ` · ${facts.join(" · ")}` : ""),
    rows.length
      ? table("Held-out ranking metrics stored in the bundle", rows)
      : h("p", { class: "muted" }, model ? "This bundle stores no evaluation metrics." : "Model metrics are unavailable."),
    quality.length ? table("Segmentation", quality) : null,
  );
}

/** Build the scatter; returns a function that highlights one segment (or clears with null). */
function drawScatter(canvas, { segments, points, centroids }, onPick, onHover) {
  const Chart = /** @type {any} */ (window).Chart;
  if (!Chart) throw new Error("The chart library did not load.");
  const datasets = segments.map((segment, index) => ({
    label: segment.name,
    segmentId: segment.id,
    data: points.filter((p) => p.segment === segment.id),
    backgroundColor: `${colourOf(index)}b3`,
    borderColor: colourOf(index),
    pointStyle: POINT_STYLES[index % POINT_STYLES.length],
    pointRadius: 4,
    pointHoverRadius: 7,
  }));
  const centroidPoints = centroids.filter(Boolean);
  if (centroidPoints.length) {
    datasets.push({
      label: "Centroids",
      segmentId: "__centroids__",
      data: centroidPoints,
      // Filled in the segment's colour with a dark rim, so a centroid reads as "the middle of that group".
      backgroundColor: centroids.map((c, index) => (c ? colourOf(index) : null)).filter(Boolean),
      borderColor: "#111",
      borderWidth: 2,
      pointStyle: "rectRot",
      pointRadius: 11,
      pointHoverRadius: 13,
    });
  }
  const nameOf = new Map(segments.map((s) => [s.id, s.name]));
  /** @type {string | null} */
  let hovered = null;
  const segmentAt = (elements) => {
    const hit = elements?.[0];
    if (!hit) return null;
    const dataset = datasets[hit.datasetIndex];
    return dataset.segmentId === "__centroids__" ? dataset.data[hit.index].segment : dataset.segmentId;
  };
  const chart = new Chart(canvas, {
    type: "scatter",
    data: { datasets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      scales: {
        x: { title: { display: true, text: "PCA 1" } },
        y: { title: { display: true, text: "PCA 2" } },
      },
      plugins: {
        legend: { position: "bottom", labels: { usePointStyle: true } },
        tooltip: {
          callbacks: {
            label: (ctx) => {
              const raw = ctx.raw ?? {};
              if (ctx.dataset.segmentId === "__centroids__") return `Centroid of ${nameOf.get(raw.segment) ?? raw.segment}`;
              const where = `(${formatNumber(raw.x, 2)}, ${formatNumber(raw.y, 2)})`;
              return `${ctx.dataset.label}${raw.userId ? ` · shopper ${raw.userId}` : ""} ${where}`;
            },
          },
        },
      },
      onClick: (_event, elements) => {
        const id = segmentAt(elements);
        if (id !== null) onPick(id);
      },
      onHover: (_event, elements) => {
        const id = segmentAt(elements);
        // Only react when the hovered segment changes: each highlight redraws the chart.
        if (id !== hovered) {
          hovered = id;
          onHover(id);
        }
      },
    },
  });
  canvas.__chart = chart;
  return (selectedId) => {
    chart.data.datasets.forEach((dataset, index) => {
      if (dataset.segmentId === "__centroids__") return;
      const dim = selectedId !== null && dataset.segmentId !== selectedId;
      dataset.backgroundColor = `${colourOf(index)}${dim ? "26" : "b3"}`;
      dataset.borderColor = dim ? `${colourOf(index)}40` : colourOf(index);
    });
    chart.update("none");
  };
}

function profileDetails(segment) {
  const raw = segment.raw ?? {};
  const lines = [
    `${segment.name}: ${formatNumber(segment.size ?? raw.n_users)} shoppers${segment.share !== undefined ? ` (${formatShare(segment.share)})` : ""}.`,
  ];
  const categories = topEntries(raw.top_categories, 3).map((c) => c.name);
  if (categories.length) lines.push(`Mostly buys ${categories.join(", ")}.`);
  const age = mixText(raw.age_mix ?? raw.age);
  if (age !== "–") lines.push(`Age: ${age}.`);
  const gender = mixText(raw.gender_mix ?? raw.gender);
  if (gender !== "–") lines.push(`Gender: ${gender}.`);
  return lines.join(" ");
}

/** Route handler for #/segments. */
export async function renderSegments(main) {
  replace(main, h("p", { class: "muted" }, "Loading segments…"));
  let data;
  let modelInfo = null;
  try {
    [data, modelInfo] = await Promise.all([api.segments(), api.model().catch(() => null)]);
  } catch (err) {
    replace(main, h("section", { class: "page" }, h("h1", {}, "Customer segments"), h("p", { class: "form-error" }, "Could not load segments.")));
    announceError(err);
    return;
  }
  const model = normaliseSegments(data);
  const canvas = h("canvas", {
    id: "segment-canvas",
    role: "img",
    "aria-label": `Scatter plot of ${model.points.length} shoppers in ${model.segments.length} segments, projected to two dimensions; segment cards below describe each one.`,
  });
  const plot = h("div", { class: "plot", "data-testid": "segment-plot", "data-segment-count": String(model.segments.length) }, canvas);
  const selection = h("p", { class: "selection", "aria-live": "polite", id: "segment-selection" }, "Hover or pick a segment to see its profile.");
  let highlight = () => {};
  let pinned = null;
  const cards = h("ul", { class: "segment-grid" });

  function select(id, { hover = false } = {}) {
    if (!hover) pinned = pinned === id ? null : id;
    const shown = hover ? id : pinned;
    highlight(shown);
    for (const card of cards.children) {
      const on = card.getAttribute("data-segment-id") === shown;
      card.classList.toggle("is-selected", on);
      card.querySelector("button.segment-select")?.setAttribute("aria-pressed", String(on && pinned === shown));
    }
    const segment = model.segments.find((s) => s.id === shown);
    selection.textContent = segment ? profileDetails(segment) : "Hover or pick a segment to see its profile.";
  }

  model.segments.forEach((segment, index) => cards.append(segmentCard(segment, index, select)));
  cards.addEventListener("mouseleave", () => select(pinned, { hover: true }));

  replace(
    main,
    h(
      "section",
      { class: "page dashboard", "aria-labelledby": "page-heading" },
      h("h1", { id: "page-heading" }, "Customer segments"),
      h("p", { class: "subtitle" }, `${model.segments.length} segments learned from shopper embeddings · ${model.points.length} shoppers plotted`),
      h("div", { class: "dashboard-top" }, h("div", { class: "card plot-card" }, plot, selection), metricsPanel(data, modelInfo)),
      h("h2", {}, "Segment profiles"),
      cards,
    ),
  );
  try {
    highlight = drawScatter(
      canvas,
      model,
      (id) => select(id),
      (id) => select(id ?? pinned, { hover: true }),
    );
  } catch (err) {
    replace(plot, h("p", { class: "form-error" }, "The plot could not be drawn."));
    announceError(err);
  }
}
