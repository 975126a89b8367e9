"""Tiny raw data sets in each supported format, written fresh by every test that asks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

GENRES = ["unknown", "Action", "Comedy", "Drama"]

# 100K: tab-separated ratings, pipe-separated movies (genre flags) and users, latin-1.
ML100K_ITEMS = [
    "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|1|0",
    "2|Usual Suspects, The (1995)|14-Aug-1995||http://x|0|0|0|1",
    "3|Café au lait (1994)|01-Jan-1994||http://x|0|1|1|0",
    "4|unknown||||1|0|0|0",
]
ML100K_USERS = ["1|24|M|technician|85711", "2|53|F|other|94043", "3|23|M|writer|32067"]
ML100K_RATINGS = [
    "1\t1\t5\t881250949",
    "1\t2\t3\t881250950",
    "2\t1\t4\t881250951",
    "2\t3\t2\t881250952",
    "3\t3\t5\t881250953",
    "3\t4\t1\t881250954",
]


def write_lines(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def write_ml100k(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_lines(folder / "u.genre", [f"{g}|{i}" for i, g in enumerate(GENRES)], "latin-1")
    write_lines(folder / "u.item", ML100K_ITEMS, "latin-1")
    write_lines(folder / "u.user", ML100K_USERS, "latin-1")
    write_lines(folder / "u.data", ML100K_RATINGS, "latin-1")
    return folder


def write_ml1m(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_lines(
        folder / "movies.dat",
        [
            "1::Toy Story (1995)::Animation|Children's|Comedy",
            "2::City of Lost Children, The (Cité des enfants perdus, La) (1995)::Adventure|Sci-Fi",
            "3::Heat (1995)::Action|Crime|Thriller",
        ],
        "latin-1",
    )
    write_lines(folder / "users.dat", ["1::F::1::10::48067", "2::M::56::16::70072"], "latin-1")
    write_lines(
        folder / "ratings.dat",
        [
            "1::1::5::978300760",
            "1::2::3::978302109",
            "2::3::4::978301968",
            "2::1::2::978300275",
        ],
        "latin-1",
    )
    return folder


def write_csv_release(folder: Path, with_tags: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_lines(
        folder / "movies.csv",
        [
            "movieId,title,genres",
            "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy",
            '2,"American President, The (1995)",Comedy|Drama|Romance',
            "3,Some Film,(no genres listed)",
            "4,Babylon 5 (1994) ,Sci-Fi",
        ],
    )
    write_lines(
        folder / "ratings.csv",
        [
            "userId,movieId,rating,timestamp",
            "1,1,4.0,964982703",
            "1,2,4.5,964981247",
            "2,1,2.5,1445714835",
            "2,3,3.5,1445714885",
            "3,4,0.5,1445715000",
        ],
    )
    if with_tags:
        write_lines(
            folder / "tags.csv",
            [
                "userId,movieId,tag,timestamp",
                "1,1,pixar,1445714994",
                "2,1,Pixar,1445714996",
                "2,1,fun,1445714997",
                "2,99,orphan,1445714998",
            ],
        )
    return folder


SHOP_MAPPING = """\
name: tiny-shop
users:
  path: customers.csv
  columns: {user_id: customer, age: age_years, location: city}
items:
  path: products.csv
  columns: {item_id: sku, title: name, categories: cats, price: price_eur}
  categories_separator: ";"
  extra_columns: [colour]
interactions:
  path: events.csv
  columns: {user_id: customer, item_id: sku, timestamp: when, event: action, value: amount}
  event_map: {buy: purchase, add_to_cart: cart}
"""


def write_shop_csv(folder: Path) -> Path:
    """A generic CSV export plus its column mapping; returns the mapping file."""
    folder.mkdir(parents=True, exist_ok=True)
    write_lines(folder / "customers.csv", ["customer,age_years,city", "c1,34,Leeds", "c2,41,York"])
    write_lines(
        folder / "products.csv",
        [
            "sku,name,cats,price_eur,colour",
            "p1,Red Mug,Home;Kitchen,9.5,red",
            "p2,Desk Lamp,Home,24,black",
        ],
    )
    write_lines(
        folder / "events.csv",
        [
            "customer,sku,when,action,amount",
            "c1,p1,2025-01-02T10:00:00Z,view,",
            "c1,p1,2025-01-02T10:01:00Z,add_to_cart,",
            "c1,p1,2025-01-02T10:02:00Z,buy,9.5",
            "c2,p2,2025-01-03T08:00:00+01:00,view,",
        ],
    )
    return write_lines(folder / "mapping.yaml", SHOP_MAPPING.splitlines())


@pytest.fixture
def ml100k_dir(tmp_path: Path) -> Path:
    return write_ml100k(tmp_path / "ml-100k")


@pytest.fixture
def ml1m_dir(tmp_path: Path) -> Path:
    return write_ml1m(tmp_path / "ml-1m")


@pytest.fixture
def csv_release_dir(tmp_path: Path) -> Path:
    return write_csv_release(tmp_path / "ml-latest-small")


@pytest.fixture
def shop_mapping(tmp_path: Path) -> Path:
    return write_shop_csv(tmp_path / "shop")


@pytest.fixture
def write() -> Callable[..., Path]:
    """`write(path, lines, encoding="utf-8")` for tests that craft their own broken files."""
    return write_lines
