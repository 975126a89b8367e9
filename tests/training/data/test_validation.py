"""Bad input: a clear DataError naming file, line or column, or a counted drop with its reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from explainrec.errors import DataError
from training.data.loaders import load_dataset


def _reasons(report: object) -> dict[str, int]:
    return {i.reason: i.count for i in report.issues}  # type: ignore[attr-defined]


def test_missing_file(ml100k_dir: Path) -> None:
    (ml100k_dir / "u.user").unlink()
    with pytest.raises(DataError, match=r"u\.user: file not found; expected user id\|age"):
        load_dataset("movielens", ml100k_dir)


def test_missing_column(csv_release_dir: Path, write: Callable[..., Path]) -> None:
    write(csv_release_dir / "ratings.csv", ["userId,movieId,timestamp", "1,1,964982703"])
    with pytest.raises(DataError, match=r"ratings\.csv: missing column\(s\) \['rating'\]"):
        load_dataset("movielens", csv_release_dir)


def test_unparsable_values_are_dropped_or_fixed_with_lines(ml100k_dir: Path) -> None:
    with (ml100k_dir / "u.data").open("a") as fh:
        fh.write("1\t3\tfive\t881250960\n")  # line 7: unparsable rating -> drop
        fh.write("2\t2\t4\tyesterday\n")  # line 8: unparsable timestamp -> drop
    with (ml100k_dir / "u.user").open("a") as fh:
        fh.write("4|old|F|artist|10001\n")  # line 4: unparsable age -> kept, age missing
    ds, report = load_dataset("movielens", ml100k_dir)
    reasons = _reasons(report)
    assert reasons["missing or unparsable value (expected a number)"] == 1
    assert reasons["missing or unparsable timestamp (expected a Unix time in s)"] == 1
    assert reasons["unparsable age set to missing (expected an integer)"] == 1
    assert len(ds.interactions) == 6 and len(ds.users) == 4
    shown = "\n".join(i.line() for i in report.issues)
    assert "line 7: value='five'" in shown and "line 8: timestamp='yesterday'" in shown
    assert "line 4: age='old'" in shown
    assert "dropped 1 interactions row(s) in" in report.format_text()


def test_duplicate_ids_keep_first(ml100k_dir: Path) -> None:
    with (ml100k_dir / "u.item").open("a", encoding="latin-1") as fh:
        fh.write("1|Toy Story again (1995)|01-Jan-1995||http://x|0|0|1|0\n")
    ds, report = load_dataset("movielens", ml100k_dir)
    assert _reasons(report) == {"duplicate item_id (the first row is kept)": 1}
    assert ds.items.set_index("item_id").loc["1", "title"] == "Toy Story"
    assert "line 5: item_id='1'" in report.issues[0].line()


def test_unknown_user_and_item_are_dropped(ml100k_dir: Path) -> None:
    with (ml100k_dir / "u.data").open("a") as fh:
        fh.write("9\t1\t4\t881250960\n1\t99\t4\t881250961\n")
    ds, report = load_dataset("movielens", ml100k_dir)
    reasons = _reasons(report)
    assert reasons[f"user_id not in the users table ({ml100k_dir / 'u.user'})"] == 1
    assert reasons[f"item_id not in the items table ({ml100k_dir / 'u.item'})"] == 1
    assert len(ds.interactions) == 6


def test_strict_mode_turns_drops_into_errors(ml100k_dir: Path) -> None:
    with (ml100k_dir / "u.data").open("a") as fh:
        fh.write("1\t99\t4\t881250961\n")
    expected = r"dropped 1 interactions row.*item_id not in the items table.*line 7.*strict mode"
    with pytest.raises(DataError, match=expected):
        load_dataset("movielens", ml100k_dir, strict=True)


def test_empty_table(ml100k_dir: Path, csv_release_dir: Path) -> None:
    (ml100k_dir / "u.data").write_text("")
    with pytest.raises(DataError, match=r"u\.data: no interactions rows; expected at least one"):
        load_dataset("movielens", ml100k_dir)
    (csv_release_dir / "movies.csv").write_text("movieId,title,genres\n")  # header only
    with pytest.raises(DataError, match=r"movies\.csv: no items rows"):
        load_dataset("movielens", csv_release_dir)


def test_everything_dropped_is_an_error(ml100k_dir: Path, write: Callable[..., Path]) -> None:
    write(ml100k_dir / "u.data", ["1\t99\t4\t881250961", "2\t98\t3\t881250962"])
    with pytest.raises(DataError, match=r"no interactions left after validation \(2 dropped\)"):
        load_dataset("movielens", ml100k_dir)


def test_wrong_encoding_names_file_and_line(csv_release_dir: Path) -> None:
    with (csv_release_dir / "movies.csv").open("ab") as fh:
        fh.write("5,Amélie (2001),Comedy\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"movies\.csv: line 6, byte 0xe9 is not valid utf-8.*latin-1"):
        load_dataset("movielens", csv_release_dir)


def test_malformed_row(csv_release_dir: Path) -> None:
    with (csv_release_dir / "ratings.csv").open("a") as fh:
        fh.write("1,3,4.0,964982703,extra,fields\n")
    with pytest.raises(DataError, match=r"ratings\.csv: malformed.*line 7"):
        load_dataset("movielens", csv_release_dir)


def test_exact_duplicate_interactions(shop_mapping: Path) -> None:
    events = shop_mapping.parent / "events.csv"
    events.write_text(events.read_text() + "c1,p1,2025-01-02T10:00:00Z,view,\nc1,p1,2025-01-05,teleport,\n")
    ds, report = load_dataset("csv", None, config=shop_mapping)
    reasons = _reasons(report)
    assert reasons["exact duplicate interaction"] == 1
    assert any(r.startswith("unknown event type") for r in reasons)
    assert len(ds.interactions) == 4
