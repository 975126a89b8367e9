"""The shipped data configs parse, and the CSV example mapping works on files shaped like it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from training.config import load_config
from training.data.loaders import load_dataset
from training.data.loaders.generic import CsvMapping

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "data"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_data_config_validates(path: Path) -> None:
    load_config(path, CsvMapping)


def test_csv_example_mapping_end_to_end(tmp_path: Path, write: Callable[..., Path]) -> None:
    write(
        tmp_path / "customers.csv",
        ["customer_id,age,gender,city,yearly_income", "c1,34,F,Leeds,41000", "c2,,M,York,n/a"],
    )
    write(
        tmp_path / "products.csv",
        [
            "sku,product_name,category,brand,price,description,colour",
            'k1,Trail Shoe,Shoes|Sports,Acme,79.0,"Grippy, light",blue',
            "k2,Mug,Home,Potter,7.5,Stoneware,white",
        ],
    )
    write(
        tmp_path / "events.csv",
        [
            "customer_id,sku,event_time,event_type,amount,qty",
            "c1,k1,2025-03-01T09:00:00Z,product_view,,",
            "c1,k1,2025-03-01T09:01:00Z,add_to_cart,,1",
            "c1,k1,2025-03-01T09:02:00Z,order,79.0,1",
            "c2,k2,2025-03-02T12:00:00Z,product_view,,",
        ],
    )
    ds, report = load_dataset("csv", tmp_path, config=CONFIGS / "csv-example.yaml")
    assert ds.name == "my-shop"
    assert ds.items.set_index("item_id").loc["k1", "categories"] == ["Shoes", "Sports"]
    assert list(ds.interactions["event"]) == ["view", "cart", "purchase", "view"]
    assert ds.interactions["quantity"].iloc[2] == 1
    # An unparsable optional attribute is kept as missing and reported as fixed.
    fixed = {i.reason: i.count for i in report.issues if i.action == "fixed"}
    assert fixed == {"unparsable income set to missing (expected a number)": 1}
