from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from explain.base import Explanation
from explain.cache import CachedExplainer
from explain.evidence import Evidence, SegmentEvidence
from explain.template import TemplateExplainer
from tests.explain.conftest import evidence_for


class CountingTemplate(TemplateExplainer):
    """The real template explainer, recording the batches it is asked for."""

    def __init__(self, transient: bool = False) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.transient = transient

    def explain(self, evidences: Sequence[Evidence]) -> list[Explanation]:
        self.batches.append([ev.item_id for ev in evidences])
        return [replace(e, transient=self.transient) for e in super().explain(evidences)]


def test_misses_go_as_one_batch_and_hits_skip_the_explainer() -> None:
    inner = CountingTemplate()
    cache = CachedExplainer(inner, bundle_version="v1")
    top = [evidence_for(i, ["i2", "i3"]) for i in ("i1", "i4", "i5")]
    first = cache.explain(top)
    assert inner.batches == [["i1", "i4", "i5"]]
    mixed = [top[1], evidence_for("i6", ["i5"]), top[0]]
    second = cache.explain(mixed)
    assert inner.batches[-1] == ["i6"]  # only the miss was explained
    assert second[0] == first[1] and second[2] == first[0]
    assert (cache.hits, cache.misses) == (2, 4)


def test_new_evidence_or_bundle_version_is_a_miss() -> None:
    inner = CountingTemplate()
    cache = CachedExplainer(inner, bundle_version="v1")
    cache.explain([evidence_for("i1", ["i2"])])
    # New feedback moved the item up in the user's segment: new facts, new text.
    cache.explain([evidence_for("i1", ["i2"], segment=SegmentEvidence(1, "s", 2, 2.0, 10))])
    assert len(inner.batches) == 2
    other = CachedExplainer(inner, bundle_version="v2")
    assert cache.key(evidence_for("i1", ["i2"])) != other.key(evidence_for("i1", ["i2"]))


def test_lru_bound_and_transient_results_are_not_kept() -> None:
    cache = CachedExplainer(CountingTemplate(), bundle_version="v1", max_entries=2)
    for item in ("i1", "i4", "i5"):
        cache.explain([evidence_for(item, ["i2"])])
    assert len(cache) == 2
    assert cache.key(evidence_for("i1", ["i2"])) not in cache._entries  # the oldest went first

    flaky = CachedExplainer(CountingTemplate(transient=True), bundle_version="v1")
    flaky.explain([evidence_for("i1", ["i2"])])
    assert len(flaky) == 0


def test_async_path_uses_the_cache_too() -> None:
    inner = CountingTemplate()
    cache = CachedExplainer(inner, bundle_version="v1")
    evs = [evidence_for("i1", ["i2"])]
    first = asyncio.run(cache.aexplain(evs))
    again = asyncio.run(cache.aexplain(evs))
    assert first == again and len(inner.batches) == 1
