"""The demo shop: a deterministic, seeded e-commerce data set shipped as code.

Shoppers belong to latent segments (`users.planted_segment`, ground truth for tests only,
never a model feature). A segment fixes which categories a shopper favours, which price
level they buy at and their demographics, so the structure is learnable: K-Means on
per-user category shares recovers the segments (tested via adjusted Rand index).

Each shopper has sessions spread over ~6 months; a session is a run of product views, some
of which turn into clicks, cart adds and purchases (purchase value = price x quantity).
Everything is vectorised numpy, so the full size generates in a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from explainrec.errors import ConfigError
from training.data.schema import Dataset, coerce_dtypes

START = pd.Timestamp("2025-01-01", tz="UTC")
DAYS = 182

# category -> (median price, nouns, features)
CATEGORIES: dict[str, tuple[float, tuple[str, ...], tuple[str, ...]]] = {
    "Electronics": (
        120.0,
        ("Headphones", "Speaker", "Smartwatch", "Camera", "Earbuds", "Soundbar"),
        ("long battery life", "noise cancelling", "Bluetooth 5.3", "4K recording"),
    ),
    "Computers": (
        450.0,
        ("Laptop", "Monitor", "Keyboard", "Mouse", "Tablet", "SSD Drive"),
        ("fast processor", "backlit keys", "USB-C charging", "anti-glare screen"),
    ),
    "Phones & Accessories": (
        60.0,
        ("Phone Case", "Charger", "Power Bank", "Screen Protector", "Smartphone"),
        ("fast charging", "drop protection", "slim design", "wireless charging"),
    ),
    "Home & Kitchen": (
        45.0,
        ("Blender", "Coffee Maker", "Knife Set", "Pan", "Kettle", "Toaster"),
        ("dishwasher safe", "stainless steel", "non-stick coating", "one-touch controls"),
    ),
    "Furniture": (
        260.0,
        ("Sofa", "Desk", "Bookshelf", "Armchair", "Dining Table", "Bed Frame"),
        ("solid oak", "easy assembly", "stain-resistant fabric", "space-saving design"),
    ),
    "Garden & Tools": (
        55.0,
        ("Drill", "Hose", "Lawn Mower", "Tool Kit", "Planter", "Pruner"),
        ("cordless", "weatherproof", "ergonomic grip", "heavy-duty steel"),
    ),
    "Toys & Games": (
        30.0,
        ("Board Game", "Puzzle", "Building Set", "Plush Toy", "RC Car", "Doll House"),
        ("ages 6 and up", "educational", "family fun", "1000 pieces"),
    ),
    "Baby": (
        35.0,
        ("Stroller", "Baby Monitor", "Diaper Bag", "High Chair", "Baby Carrier", "Crib Mobile"),
        ("BPA-free", "machine washable", "foldable", "night vision"),
    ),
    "Sports & Outdoors": (
        70.0,
        ("Tent", "Backpack", "Bicycle Helmet", "Sleeping Bag", "Kayak Paddle"),
        ("waterproof", "ultralight", "breathable mesh", "all-season"),
    ),
    "Fitness": (
        50.0,
        ("Yoga Mat", "Dumbbells", "Resistance Bands", "Jump Rope", "Kettlebell", "Foam Roller"),
        ("non-slip surface", "adjustable weight", "compact storage", "gym quality"),
    ),
    "Clothing": (
        40.0,
        ("Jacket", "Jeans", "T-Shirt", "Sweater", "Dress", "Hoodie"),
        ("organic cotton", "slim fit", "recycled fabric", "wrinkle-free"),
    ),
    "Shoes": (
        75.0,
        ("Running Shoes", "Sneakers", "Boots", "Sandals", "Loafers", "Hiking Shoes"),
        ("cushioned sole", "water-resistant leather", "wide fit", "lightweight"),
    ),
    "Beauty": (
        22.0,
        ("Face Serum", "Lipstick", "Shampoo", "Moisturiser", "Perfume", "Hair Dryer"),
        ("vegan formula", "fragrance-free", "dermatologist tested", "long-lasting"),
    ),
    "Books": (
        15.0,
        ("Novel", "Cookbook", "Biography", "Travel Guide", "Thriller", "Poetry Collection"),
        ("bestseller", "hardcover edition", "illustrated", "award-winning author"),
    ),
    "Grocery": (
        8.0,
        ("Coffee Beans", "Olive Oil", "Green Tea", "Dark Chocolate", "Pasta", "Granola"),
        ("organic", "fair trade", "family size", "gluten-free"),
    ),
}
BRAND_SYLLABLES = ("Vol", "Nor", "Zen", "Aro", "Kel", "Lum", "Tri", "Bex", "Ori", "Sol", "Mav", "Pix")
BRAND_ENDINGS = ("tix", "dia", "ora", "ex", "ly", "io", "ano", "ux")
ADJECTIVES = ("Pro", "Classic", "Essential", "Ultra", "Eco", "Compact", "Deluxe", "Smart", "Lite", "Max")
LOCATIONS = (
    "London",
    "Manchester",
    "Birmingham",
    "Leeds",
    "Glasgow",
    "Bristol",
    "Liverpool",
    "Edinburgh",
    "Cardiff",
    "Belfast",
    "Brighton",
    "Cambridge",
)


@dataclass(frozen=True)
class Segment:
    name: str
    favourites: tuple[str, ...]  # in decreasing preference
    price_level: float  # multiplier on each category's median price
    share: float  # fraction of shoppers
    age_mean: float
    female_prob: float
    income_median: float
    sessions_mean: float
    urban: bool  # urban segments lean to the big cities


SEGMENTS = (
    Segment(
        "tech enthusiasts",
        ("Electronics", "Computers", "Phones & Accessories"),
        1.3,
        0.17,
        31,
        0.25,
        52_000,
        9,
        True,
    ),
    Segment(
        "young families", ("Toys & Games", "Baby", "Home & Kitchen"), 1.0, 0.16, 35, 0.6, 45_000, 8, False
    ),
    Segment(
        "active lifestyle", ("Fitness", "Sports & Outdoors", "Shoes"), 1.0, 0.14, 29, 0.45, 40_000, 8, True
    ),
    Segment("fashion & beauty", ("Clothing", "Beauty", "Shoes"), 1.1, 0.16, 27, 0.75, 38_000, 10, True),
    Segment(
        "home upgraders",
        ("Furniture", "Home & Kitchen", "Garden & Tools"),
        1.6,
        0.12,
        46,
        0.5,
        68_000,
        6,
        False,
    ),
    Segment(
        "readers & foodies", ("Books", "Grocery", "Home & Kitchen"), 0.8, 0.13, 52, 0.55, 36_000, 7, False
    ),
    Segment(
        "bargain DIYers",
        ("Garden & Tools", "Grocery", "Phones & Accessories"),
        0.6,
        0.12,
        42,
        0.35,
        28_000,
        7,
        False,
    ),
)
FAVOURITE_WEIGHTS = (0.45, 0.28, 0.15)  # the rest (0.12) spreads over all other categories
TASTE_CONCENTRATION = 40.0  # Dirichlet concentration of a shopper's taste around their segment's


def _brand_names(rng: np.random.Generator, n: int) -> list[str]:
    names: list[str] = []
    while len(names) < n:
        name = str(rng.choice(BRAND_SYLLABLES)) + str(rng.choice(BRAND_ENDINGS))
        if name not in names:
            names.append(name)
    return names


def _make_items(rng: np.random.Generator, n_items: int) -> pd.DataFrame:
    cat_names = list(CATEGORIES)
    n_cat = len(cat_names)
    # Every category gets at least one product so every favourite can be sampled.
    counts = 1 + rng.multinomial(n_items - n_cat, rng.dirichlet(np.full(n_cat, 8.0)))
    brands = _brand_names(rng, 4 * n_cat)
    rows = []
    seen: dict[str, int] = {}
    for c, cat in enumerate(cat_names):
        median, nouns, features = CATEGORIES[cat]
        cat_brands = brands[4 * c : 4 * c + 4]
        for _ in range(counts[c]):
            brand = str(rng.choice(cat_brands))
            adj = str(rng.choice(ADJECTIVES))
            noun = str(rng.choice(nouns))
            price = round(float(median * rng.lognormal(0.0, 0.55)), 2)
            title = f"{brand} {adj} {noun}"
            seen[title] = seen.get(title, 0) + 1
            if seen[title] > 1:
                title = f"{title} {seen[title]}"
            f1, f2 = rng.choice(len(features), size=2, replace=False)
            tier = "Popular"
            if price > 1.5 * median:
                tier = "Premium"
            elif price < 0.7 * median:
                tier = "Budget-friendly"
            description = (
                f"{tier} {noun.lower()} by {brand} with {features[f1]} and {features[f2]}. "
                f"Part of our {cat} range."
            )
            rows.append((title, [cat], price, description, brand))
    items = pd.DataFrame(rows, columns=["title", "categories", "price", "description", "brand"])
    items.insert(0, "item_id", [f"P{i + 1:05d}" for i in range(len(items))])
    items["category_index"] = np.repeat(np.arange(n_cat), counts)
    return items


def _make_users(rng: np.random.Generator, n_users: int) -> pd.DataFrame:
    shares = np.array([s.share for s in SEGMENTS])
    segment = rng.choice(len(SEGMENTS), size=n_users, p=shares / shares.sum())
    age_mean = np.array([s.age_mean for s in SEGMENTS])[segment]
    age = np.clip(np.round(rng.normal(age_mean, 7.0)), 18, 85).astype(int)
    female = rng.random(n_users) < np.array([s.female_prob for s in SEGMENTS])[segment]
    gender = np.where(female, "F", "M")
    # Non-binary / undisclosed shoppers exist in any real shop.
    gender = np.where(rng.random(n_users) < 0.03, "X", gender)
    urban = np.array([s.urban for s in SEGMENTS])[segment]
    city_weights = np.linspace(2.0, 0.5, len(LOCATIONS))
    p_urban = city_weights**2 / (city_weights**2).sum()
    p_other = np.full(len(LOCATIONS), 1.0 / len(LOCATIONS))
    loc_u = rng.choice(len(LOCATIONS), size=n_users, p=p_urban)
    loc_o = rng.choice(len(LOCATIONS), size=n_users, p=p_other)
    location = np.array(LOCATIONS)[np.where(urban, loc_u, loc_o)]
    income_median = np.array([s.income_median for s in SEGMENTS])[segment]
    income = np.round(income_median * rng.lognormal(0, 0.3, n_users), -2)
    return pd.DataFrame(
        {
            "user_id": [f"U{i + 1:05d}" for i in range(n_users)],
            "age": age,
            "gender": gender,
            "location": location,
            "income": income.astype(float),
            "planted_segment": segment,
        }
    )


def _segment_item_cdf(items: pd.DataFrame, segment: Segment, popularity: np.ndarray) -> np.ndarray:
    """Monotone CDF over all items: block c spans (c, c+1], so `searchsorted(cdf, c + u)` samples
    an item of category c by popularity x closeness to the segment's price level."""
    medians = np.array([CATEGORIES[c][0] for c in CATEGORIES])
    cat = items["category_index"].to_numpy()
    target = np.log(medians[cat] * segment.price_level)
    fit = np.exp(-((np.log(items["price"].to_numpy()) - target) ** 2) / (2 * 0.45**2))
    weights = popularity * fit + 1e-12
    cdf = np.empty(len(items))
    for c in range(len(CATEGORIES)):
        block = cat == c
        w = np.cumsum(weights[block])
        cdf[block] = c + w / w[-1]
    return cdf


def _taste_matrix(rng: np.random.Generator, segments: np.ndarray) -> np.ndarray:
    cat_names = list(CATEGORIES)
    base = np.zeros((len(SEGMENTS), len(cat_names)))
    for s, seg in enumerate(SEGMENTS):
        base[s] = (1.0 - sum(FAVOURITE_WEIGHTS)) / (len(cat_names) - len(seg.favourites))
        for fav, w in zip(seg.favourites, FAVOURITE_WEIGHTS, strict=True):
            base[s, cat_names.index(fav)] = w
    return np.vstack([rng.dirichlet(TASTE_CONCENTRATION * base[s]) for s in segments])


def _group_cumsum(values: np.ndarray, group_sizes: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each group of consecutive rows."""
    total = np.cumsum(values)
    starts = np.repeat(np.cumsum(group_sizes) - group_sizes, group_sizes)
    before = np.concatenate([[0.0], total])[starts]
    return total - before


def _make_events(rng: np.random.Generator, users: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    n_users = len(users)
    segment = users["planted_segment"].to_numpy()
    taste = _taste_matrix(rng, segment)

    # Each shopper is active in a window of the 6 months; some lapse early (RFM recency).
    horizon = DAYS * 86_400.0
    first = rng.uniform(0.0, 0.3, n_users) * horizon
    last = first + rng.uniform(0.35, 1.0, n_users) * (horizon - first)
    sessions_mean = np.array([s.sessions_mean for s in SEGMENTS])[segment]
    n_sessions = 1 + rng.poisson(sessions_mean * rng.lognormal(0, 0.35, n_users) - 1)
    session_user = np.repeat(np.arange(n_users), n_sessions)
    session_start = rng.uniform(first[session_user], last[session_user])

    n_views = 1 + rng.poisson(3.0, len(session_user))
    view_session = np.repeat(np.arange(len(session_user)), n_views)
    view_user = session_user[view_session]
    view_time = session_start[view_session] + _group_cumsum(rng.exponential(70.0, len(view_session)), n_views)

    # Category from the shopper's taste, then an item of that category by the segment's price fit.
    cum_taste = np.cumsum(taste, axis=1)
    u = rng.random(len(view_user))
    view_cat = np.minimum((cum_taste[view_user] < u[:, None]).sum(axis=1), taste.shape[1] - 1)
    popularity = rng.lognormal(0.0, 1.0, len(items))
    view_item = np.empty(len(view_user), dtype=np.int64)
    view_segment = segment[view_user]
    for s, seg in enumerate(SEGMENTS):
        mask = view_segment == s
        cdf = _segment_item_cdf(items, seg, popularity)
        target = view_cat[mask] + rng.uniform(1e-9, 1.0, int(mask.sum()))
        view_item[mask] = np.minimum(np.searchsorted(cdf, target), len(items) - 1)

    # Funnel: view -> click -> cart -> purchase, each a little later in the same session.
    clicked = rng.random(len(view_user)) < 0.4
    carted = clicked & (rng.random(len(view_user)) < 0.3)
    bought = carted & (rng.random(len(view_user)) < 0.6)
    frames = []
    for event, mask, delay in (
        ("view", np.ones_like(clicked), 0.0),
        ("click", clicked, 8.0),
        ("cart", carted, 40.0),
        ("purchase", bought, 120.0),
    ):
        idx = np.flatnonzero(mask)
        frames.append(
            pd.DataFrame(
                {
                    "user": view_user[idx],
                    "item": view_item[idx],
                    "seconds": view_time[idx] + delay * (1.0 + rng.random(len(idx))),
                    "event": event,
                }
            )
        )
    events = pd.concat(frames, ignore_index=True)
    prices = items["price"].to_numpy()
    is_purchase = (events["event"] == "purchase").to_numpy()
    quantity = np.where(is_purchase, 1 + (rng.random(len(events)) < 0.12), 1)
    events["quantity"] = pd.array(np.where(is_purchase, quantity, 0), dtype="Int64")
    events.loc[~is_purchase, "quantity"] = pd.NA
    events["value"] = np.where(is_purchase, np.round(prices[events["item"].to_numpy()] * quantity, 2), np.nan)
    events = events.sort_values(["seconds", "user"], kind="stable").reset_index(drop=True)
    return pd.DataFrame(
        {
            "user_id": users["user_id"].to_numpy()[events["user"].to_numpy()],
            "item_id": items["item_id"].to_numpy()[events["item"].to_numpy()],
            "timestamp": START + pd.to_timedelta(np.round(events["seconds"].to_numpy()), unit="s"),
            "event": events["event"].to_numpy(),
            "value": events["value"].to_numpy(),
            "quantity": events["quantity"].array,
        }
    )


def generate_demo_shop(seed: int = 0, n_users: int = 3000, n_items: int = 2000) -> Dataset:
    """Generate the demo shop; the same arguments always give identical tables."""
    if n_items < len(CATEGORIES):
        raise ConfigError(
            f"demo shop: n_items must be at least {len(CATEGORIES)} (one per category), got {n_items}"
        )
    if n_users < 1:
        raise ConfigError(f"demo shop: n_users must be at least 1, got {n_users}")
    rng = np.random.default_rng(seed)
    items = _make_items(rng, n_items)
    users = _make_users(rng, n_users)
    interactions = _make_events(rng, users, items)
    return Dataset(
        name="demo-shop",
        users=coerce_dtypes(users, "users"),
        items=coerce_dtypes(items.drop(columns=["category_index"]), "items"),
        interactions=coerce_dtypes(interactions, "interactions"),
    )
