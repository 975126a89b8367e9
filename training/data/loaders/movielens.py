"""MovieLens loaders; the release format is detected from the files in the folder.

    100K         u.data (tab), u.item, u.user (pipe), latin-1
    1M / 10M     ratings.dat, movies.dat, users.dat (1M only), tags.dat (10M), `::`-separated
    CSV releases ratings.csv, movies.csv, optional tags.csv (latest, latest-small, 20M, 25M, 32M);
                 no users table, so users are derived from the ratings

Genres become `categories`, the release year the `year` attribute, titles lose their
"(1995)" suffix and get their article back in front ("Usual Suspects, The" -> "The Usual
Suspects"). Every rating is an interaction with event "rating" and the stars as `value`.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

import pandas as pd

from explainrec.errors import DataError
from training.data.report import PrepareReport
from training.data.schema import Dataset
from training.data.validate import (
    LINE,
    clean_ids,
    drop_duplicate_ids,
    finalize,
    parse_number,
    parse_timestamp,
    read_delimited,
    require_columns,
    require_rows,
)

log = logging.getLogger("explainrec.data")

GENRES_100K = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
# users.dat stores occupations as codes (see the 1M README).
OCCUPATIONS_1M = (
    "other",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
)
NO_GENRE = {"unknown", "(no genres listed)", ""}

_YEAR_SUFFIX = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:[-–]\d{0,4})?\)\s*$")
_TRAILING_ARTICLE = re.compile(r"^(?P<rest>.+), (?P<article>The|A|An)(?P<alt> \(.*\))?$")
_ANY_YEAR = re.compile(r"(\d{4})\s*$")
MAX_TAGS = 10
ITEM_COLUMNS = [LINE, "item_id", "title", "categories", "year"]


def clean_title(raw: str) -> tuple[str, int | None]:
    """'Usual Suspects, The (1995)' -> ('The Usual Suspects', 1995)."""
    title = raw.strip()
    year = None
    match = _YEAR_SUFFIX.match(title)
    if match:
        title, year = match["title"], int(match["year"])
    article = _TRAILING_ARTICLE.match(title)
    if article:
        title = f"{article['article']} {article['rest']}{article['alt'] or ''}"
    return title, year


def detect_format(path: Path) -> str:
    """'100k', 'dat' (1M/10M) or 'csv', from the files present in `path` (raises DataError)."""
    if not path.is_dir():
        raise DataError(f"{path}: no such directory; expected an unzipped MovieLens release")
    if (path / "u.data").is_file():
        return "100k"
    if (path / "ratings.dat").is_file():
        return "dat"
    if (path / "ratings.csv").is_file():
        return "csv"
    found = sorted(p.name for p in path.iterdir())[:20]
    raise DataError(
        f"{path}: not a MovieLens folder; expected u.data (100K), ratings.dat (1M/10M) or "
        f"ratings.csv (latest/20M/25M/32M); found {found}"
    )


def _titles_and_years(items: pd.DataFrame, report: PrepareReport, file: str) -> pd.DataFrame:
    cleaned = [clean_title(str(t)) if pd.notna(t) else ("", None) for t in items["title"]]
    items = items.copy()
    items["title"] = [t for t, _ in cleaned]
    years = pd.Series([y for _, y in cleaned], index=items.index, dtype="Int64")
    if "release_date" in items.columns:
        # 100K keeps the date in its own column; use it where the title has no "(1995)".
        from_date = items["release_date"].astype(str).str.extract(_ANY_YEAR, expand=False)
        years = years.fillna(pd.to_numeric(from_date, errors="coerce").astype("Int64"))
    items["year"] = years
    untitled = items["title"] == ""
    report.fix(
        "items",
        file,
        "missing title replaced by the item id",
        int(untitled.sum()),
        [f"line {n}" for n in items.loc[untitled, LINE].head(5)],
    )
    items.loc[untitled, "title"] = items.loc[untitled, "item_id"]
    return items


def _ratings(df: pd.DataFrame, file: str, report: PrepareReport) -> pd.DataFrame:
    df = clean_ids(df, ["user_id", "item_id"], "interactions", file, report)
    df = parse_number(df, "value", "interactions", file, report, required=True)
    df = parse_timestamp(df, "timestamp", "interactions", file, report, unit="s")
    df["event"] = "rating"
    return df


def _read_dat(path: Path, names: list[str], what: str) -> pd.DataFrame:
    # 1M is latin-1, 10M is UTF-8: UTF-8 first, since latin-1 decodes anything (wrongly).
    try:
        return read_delimited(
            path, sep="::", encoding="utf-8", names=names, quoting=csv.QUOTE_NONE, what=what
        )
    except DataError as exc:
        if "not valid utf-8" not in str(exc):
            raise
        return read_delimited(
            path, sep="::", encoding="latin-1", names=names, quoting=csv.QUOTE_NONE, what=what
        )


def _tags(path: Path, items: pd.DataFrame, frame: pd.DataFrame, report: PrepareReport) -> pd.DataFrame:
    """Attach each movie's most frequent user tags as an item attribute `tags`."""
    file = str(path)
    frame = clean_ids(frame, ["item_id"], "tags", file, report)
    frame = frame[~frame["tag"].isna()]
    tag = frame["tag"].astype(str).str.strip().str.lower()
    frame = frame.assign(tag=tag)[tag != ""]
    unknown = ~frame["item_id"].isin(items["item_id"])
    report.drop("tags", file, "tag for an item not in the movies table", int(unknown.sum()))
    counts = frame[~unknown].groupby(["item_id", "tag"]).size().reset_index(name="n")
    counts = counts.sort_values(["item_id", "n", "tag"], ascending=[True, False, True])
    top = counts.groupby("item_id").head(MAX_TAGS).groupby("item_id")["tag"].agg(list)
    items = items.copy()
    items["tags"] = [top.get(i, []) for i in items["item_id"]]
    return items


def _genres(series: pd.Series) -> list[list[str]]:
    return [[g for g in str(v).split("|") if g not in NO_GENRE] if pd.notna(v) else [] for v in series]


def _load_100k(path: Path, report: PrepareReport) -> Dataset:
    genre_file = path / "u.genre"
    genres = list(GENRES_100K)
    if genre_file.is_file():
        table = read_delimited(
            genre_file,
            sep="|",
            encoding="latin-1",
            names=["genre", "index"],
            quoting=csv.QUOTE_NONE,
            what="genre|index lines",
        )
        genres = [str(g) for g in table["genre"].dropna()]
    item_file, user_file, data_file = path / "u.item", path / "u.user", path / "u.data"
    log.info("reading %s", item_file)
    items = read_delimited(
        item_file,
        sep="|",
        encoding="latin-1",
        quoting=csv.QUOTE_NONE,
        names=["item_id", "title", "release_date", "video_date", "imdb_url", *genres],
        what="movie id|title|release date|video date|url|genre flags",
    )
    require_rows(items, str(item_file), "items")
    items = clean_ids(items, ["item_id"], "items", str(item_file), report)
    items = drop_duplicate_ids(items, "item_id", "items", str(item_file), report)
    flags = (items[genres].astype(str).apply(lambda col: col.str.strip()) == "1").to_numpy()
    named = [g not in NO_GENRE for g in genres]
    items["categories"] = [
        [g for g, on, ok in zip(genres, row, named, strict=True) if on and ok] for row in flags
    ]
    items = _titles_and_years(items, report, str(item_file))[ITEM_COLUMNS]

    log.info("reading %s", user_file)
    users = read_delimited(
        user_file,
        sep="|",
        encoding="latin-1",
        quoting=csv.QUOTE_NONE,
        names=["user_id", "age", "gender", "occupation", "location"],
        what="user id|age|gender|occupation|zip code",
    )
    require_rows(users, str(user_file), "users")
    users = clean_ids(users, ["user_id"], "users", str(user_file), report)
    users = drop_duplicate_ids(users, "user_id", "users", str(user_file), report)
    users = parse_number(users, "age", "users", str(user_file), report, required=False, integer=True)

    log.info("reading %s", data_file)
    ratings = read_delimited(
        data_file,
        sep="\t",
        encoding="latin-1",
        quoting=csv.QUOTE_NONE,
        names=["user_id", "item_id", "value", "timestamp"],
        what="user id, item id, rating, timestamp separated by tabs",
    )
    require_rows(ratings, str(data_file), "interactions")
    ratings = _ratings(ratings, str(data_file), report)
    files = {"users": str(user_file), "items": str(item_file), "interactions": str(data_file)}
    return finalize("movielens-100k", users, items, ratings, files, report)


def _load_dat(path: Path, report: PrepareReport) -> Dataset:
    movie_file, rating_file, user_file = path / "movies.dat", path / "ratings.dat", path / "users.dat"
    log.info("reading %s", movie_file)
    items = _read_dat(movie_file, ["item_id", "title", "genres"], "MovieID::Title::Genres lines")
    require_rows(items, str(movie_file), "items")
    items = clean_ids(items, ["item_id"], "items", str(movie_file), report)
    items = drop_duplicate_ids(items, "item_id", "items", str(movie_file), report)
    items["categories"] = _genres(items["genres"])
    items = _titles_and_years(items, report, str(movie_file))[ITEM_COLUMNS]

    users: pd.DataFrame | None = None
    if user_file.is_file():
        log.info("reading %s", user_file)
        users = _read_dat(
            user_file,
            ["user_id", "gender", "age", "occupation", "location"],
            "UserID::Gender::Age::Occupation::Zip-code lines",
        )
        require_rows(users, str(user_file), "users")
        users = clean_ids(users, ["user_id"], "users", str(user_file), report)
        users = drop_duplicate_ids(users, "user_id", "users", str(user_file), report)
        users = parse_number(users, "age", "users", str(user_file), report, required=False, integer=True)
        codes = pd.to_numeric(users["occupation"], errors="coerce")
        users["occupation"] = [
            OCCUPATIONS_1M[int(c)] if pd.notna(c) and 0 <= c < len(OCCUPATIONS_1M) else None for c in codes
        ]
        report.note("1M ages are the lower bounds of age groups (1 = under 18, 18, 25, 35, 45, 50, 56)")

    log.info("reading %s", rating_file)
    ratings = _read_dat(
        rating_file, ["user_id", "item_id", "value", "timestamp"], "UserID::MovieID::Rating::Timestamp lines"
    )
    require_rows(ratings, str(rating_file), "interactions")
    ratings = _ratings(ratings, str(rating_file), report)
    tag_file = path / "tags.dat"
    if tag_file.is_file():
        log.info("reading %s", tag_file)
        tags = _read_dat(
            tag_file, ["user_id", "item_id", "tag", "timestamp"], "UserID::MovieID::Tag::Timestamp lines"
        )
        items = _tags(tag_file, items, tags, report)
    files = {"users": str(user_file), "items": str(movie_file), "interactions": str(rating_file)}
    name = "movielens-1m" if users is not None else "movielens-10m"
    return finalize(name, users, items, ratings, files, report)


def _load_csv_release(path: Path, report: PrepareReport) -> Dataset:
    movie_file, rating_file, tag_file = path / "movies.csv", path / "ratings.csv", path / "tags.csv"
    log.info("reading %s", movie_file)
    items = read_delimited(movie_file, sep=",", encoding="utf-8", what="movieId,title,genres")
    require_columns(items, ["movieId", "title", "genres"], str(movie_file))
    require_rows(items, str(movie_file), "items")
    items = items.rename(columns={"movieId": "item_id"})
    items = clean_ids(items, ["item_id"], "items", str(movie_file), report)
    items = drop_duplicate_ids(items, "item_id", "items", str(movie_file), report)
    items["categories"] = _genres(items["genres"])
    items = _titles_and_years(items, report, str(movie_file))[ITEM_COLUMNS]

    log.info("reading %s (large releases take a minute)", rating_file)
    ratings = read_delimited(rating_file, sep=",", encoding="utf-8", what="userId,movieId,rating,timestamp")
    require_columns(ratings, ["userId", "movieId", "rating", "timestamp"], str(rating_file))
    require_rows(ratings, str(rating_file), "interactions")
    ratings = ratings.rename(columns={"userId": "user_id", "movieId": "item_id", "rating": "value"})
    ratings = _ratings(ratings, str(rating_file), report)
    if tag_file.is_file():
        log.info("reading %s", tag_file)
        tags = read_delimited(tag_file, sep=",", encoding="utf-8", what="userId,movieId,tag,timestamp")
        require_columns(tags, ["movieId", "tag"], str(tag_file))
        items = _tags(tag_file, items, tags.rename(columns={"movieId": "item_id"}), report)
    files = {"items": str(movie_file), "interactions": str(rating_file)}
    name = f"movielens-{path.name}" if path.name.startswith("ml-") else "movielens"
    return finalize(name, None, items, ratings, files, report)


def load_movielens(path: Path, report: PrepareReport) -> Dataset:
    """Load any MovieLens release from its unzipped folder (or a folder holding exactly one)."""
    path = Path(path)
    if path.is_dir() and not any((path / f).is_file() for f in ("u.data", "ratings.dat", "ratings.csv")):
        # An unzip target holds the release one level down (ml-1m.zip -> ml-1m/).
        subdirs = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))]
        if len(subdirs) == 1:
            path = subdirs[0]
    fmt = detect_format(path)
    report.note(
        f"detected MovieLens {'100K' if fmt == '100k' else '1M/10M' if fmt == 'dat' else 'CSV'} "
        f"format in {path}"
    )
    if fmt == "100k":
        return _load_100k(path, report)
    if fmt == "dat":
        return _load_dat(path, report)
    return _load_csv_release(path, report)
