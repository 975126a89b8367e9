"""`explainrec evaluate-explanations`: are the explanations true, needed and fast?

    explainrec evaluate-explanations --bundle artifacts/bundles --users 50 \
        --explainer llm --json artifacts/explanations-llm.json

For each sampled user with a history: fold the user vector in from the history, take the
top-k, build evidence, explain. Reports (keys as in issue 6):

- grounded_rate: share of served explanations passing the grounding check;
- llm_pass_rate: share of LLM texts passing it before any fallback (null for the template);
- hallucinated_entity_rate: share of the explainer's own texts (the LLM's before fallback)
  naming a catalogue title/category absent from the evidence;
- necessity (CountER-style PN): remove the history items the served text cites, fold the user
  vector in again, and count the share of items that leave the top-k;
- p50/p95 latency per explanation, cold, and the p50 of a cached repeat.

`BundleEvidence` turns a bundle into the plain inputs `explain.build_evidence` takes.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import random
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from explainrec.errors import ConfigError, DataError

if TYPE_CHECKING:
    from embeddings.bundle import Bundle
    from embeddings.inference import UserEncoder
    from explain.evidence import Evidence, FeedbackEvent
    from explain.grounding import GroundingChecker


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bundle", type=Path, required=True, help="bundle version dir, or bundles root (LATEST)"
    )
    parser.add_argument("--users", type=int, default=50, help="users sampled (those with a history)")
    parser.add_argument("--explainer", choices=("template", "llm"), default="template")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--k", type=int, default=10, help="top-k explained per user")
    parser.add_argument("--seed", type=int, default=0, help="user sample seed")
    parser.add_argument(
        "--batch",
        action="store_true",
        help="explain each user's top-k in one call (latency = call time / k) instead of one by one",
    )
    parser.add_argument(
        "--attribution",
        choices=("similarity", "effect", "counterfactual"),
        default="similarity",
        help="cite history items by leave-one-out effect on the score, by embedding similarity, or "
        "only when removing them (up to 3) verifiably drops the item from the top-k",
    )
    parser.add_argument(
        "--llm-backend", choices=("transformers", "llamacpp", "openai"), default="transformers"
    )
    parser.add_argument("--llm-timeout", type=float, default=30.0, help="seconds per explain call")
    parser.add_argument("--openai-base-url", default=None)
    parser.add_argument("--openai-model", default=None)
    parser.add_argument("--dump", type=Path, default=None, help="write every explanation here (JSON lines)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


# -- bundle -> evidence -------------------------------------------------------------------------
def _as_list(value: Any) -> list[str]:
    if value is None or isinstance(value, float):
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


class BundleEvidence:
    """Evidence for (user, item) pairs of one bundle: titles, categories, vectors, segment standing."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        spec = bundle.feature_spec
        self.item_ids: list[str] = list(spec.item_ids)
        self.titles: list[str] = [str(t) for t in bundle.items["title"]]
        self.categories: list[list[str]] = [_as_list(c) for c in bundle.items["categories"]]
        self.vectors = bundle.item_vectors
        labels = np.asarray(bundle.segments.labels, dtype=np.int64)
        self.labels = labels
        n_segments = int(bundle.segments.k)
        # users per item, per segment: the standing of an item among "shoppers like you"
        self.segment_counts = np.zeros((n_segments, len(self.item_ids)), dtype=np.float64)
        for user_id, items in bundle.history.items():
            row = bundle.user_row(user_id)
            if row is not None and len(items):
                self.segment_counts[labels[row], np.unique(items)] += 1
        self.segment_sizes = np.bincount(labels, minlength=n_segments)
        self.all_counts = self.segment_counts.sum(axis=0)
        self.segment_names = {p.segment: p.name for p in bundle.segments.profiles}

    def catalogue_checker(self) -> GroundingChecker:
        from explain.grounding import GroundingChecker

        categories = {c for cats in self.categories for c in cats} | set(self.bundle.feature_spec.categories)
        brands = (
            _as_list(self.bundle.items["brand"].dropna().unique()) if "brand" in self.bundle.items else []
        )
        return GroundingChecker(self.titles, sorted(categories), catalogue_attributes=brands)

    def segment_of(self, user_id: str | None, user_vector: np.ndarray) -> int:
        row = self.bundle.user_row(user_id) if user_id is not None else None
        if row is not None:
            return int(self.labels[row])
        return int(self.bundle.segments.assign(user_vector[None, :])[0])

    def evidence(
        self,
        user_id: str,
        item_index: int,
        history: Sequence[int],
        user_vector: np.ndarray,
        interests: Sequence[str] = (),
        feedback: Sequence[FeedbackEvent] = (),
        effects: np.ndarray | None = None,
    ) -> Evidence:
        """`history` is the window the user tower reads (oldest first); `effects` aligned with it."""
        from explain.evidence import SegmentEvidence, build_evidence, item_standing

        seg = self.segment_of(user_id, user_vector)
        rank, lift = item_standing(
            item_index,
            self.segment_counts[seg],
            int(self.segment_sizes[seg]),
            self.all_counts,
            len(self.labels),
        )
        hist = [int(i) for i in history]
        return build_evidence(
            user_id=user_id,
            item_id=self.item_ids[item_index],
            item_title=self.titles[item_index],
            item_categories=self.categories[item_index],
            item_vector=self.vectors[item_index],
            history_ids=[self.item_ids[i] for i in hist],
            history_titles=[self.titles[i] for i in hist],
            history_categories=[self.categories[i] for i in hist],
            history_vectors=self.vectors[hist] if hist else None,
            history_effects=effects,
            segment=SegmentEvidence(
                seg, self.segment_names.get(seg, f"segment {seg}"), rank, lift, int(self.segment_sizes[seg])
            ),
            interests=interests,
            feedback=feedback,
        )


def user_profile(bundle: Bundle, user_id: str) -> dict[str, Any]:
    row = bundle.user_row(user_id)
    if row is None:
        return {}
    record: dict[Any, Any] = bundle.users.iloc[row].to_dict()
    return {str(k): v for k, v in record.items() if k != "user_id" and v is not None and not _is_na(v)}


def _is_na(value: Any) -> bool:
    try:
        return bool(value != value)  # NaN and pandas.NA
    except (TypeError, ValueError):
        return False


def leave_one_out_effects(
    encoder: UserEncoder,
    profile: Mapping[str, Any],
    window: Sequence[int],
    user_id: str | None,
    user_vector: np.ndarray,
    item_vectors: np.ndarray,
) -> np.ndarray:
    """[len(window), n_asked]: how much each history row raises each asked item's score.

    One batched forward pass of the user tower, each row reading the window without one item.
    """
    spec = encoder.spec
    clean = {k: v for k, v in profile.items() if v is not None and v != ""}
    base = (
        spec.encode_profile(clean),
        spec.user_index(user_id) if user_id else 0,
        [0.0] * len(spec.categories),
    )
    rows = [
        (base[0], [int(i) for j, i in enumerate(window) if j != m], base[1], base[2])
        for m in range(len(window))
    ]
    if not rows:
        return np.zeros((0, len(item_vectors)), dtype=np.float32)
    without = encoder.encode_batch(rows)
    return (item_vectors @ user_vector)[None, :] - without @ item_vectors.T


def verified_counterfactual(
    bundle: Bundle,
    encoder: UserEncoder,
    profile: Mapping[str, Any],
    user_id: str,
    history: Sequence[int],
    window: Sequence[int],
    effects: np.ndarray,
    item_index: int,
    k: int,
    max_items: int = 3,
) -> np.ndarray:
    """`effects` kept only for the smallest effect-ordered set whose removal drops the item
    out of the top-k (CountER-style); all zero when no set of `max_items` does."""
    order = [m for m in np.argsort(-effects, kind="stable") if effects[m] > 0][:max_items]
    item_ids = bundle.feature_spec.item_ids
    for size in range(1, len(order) + 1):
        removed = {window[m] for m in order[:size]}
        kept = [item_ids[i] for i in history if i not in removed]
        top, _ = bundle.retriever.search(encoder.encode(profile, kept, user_id), k, exclude=list(history))
        if item_index not in {int(i) for i in top}:
            masked = np.zeros_like(effects)
            masked[order[:size]] = effects[order[:size]]
            return masked
    return np.zeros_like(effects)


def user_evidences(
    bundle: Bundle,
    source: BundleEvidence,
    encoder: UserEncoder,
    user_id: str,
    profile: Mapping[str, Any],
    history: Sequence[int],
    user_vector: np.ndarray,
    top: np.ndarray,
    k: int,
    attribution: str,
) -> list[Evidence]:
    """Evidence for each of a user's top-k, citing history by the chosen attribution:
    "similarity" (embedding neighbours), "effect" (leave-one-out score drop) or
    "counterfactual" (only a verified set whose removal drops the item from the top-k)."""
    window = list(history[-bundle.feature_spec.max_history :])
    if attribution == "similarity":
        return [source.evidence(user_id, int(i), window, user_vector) for i in top]
    effects = leave_one_out_effects(encoder, profile, window, user_id, user_vector, source.vectors[top])
    out = []
    for j, item in enumerate(top):
        column = effects[:, j]
        if attribution == "counterfactual":
            column = verified_counterfactual(
                bundle, encoder, profile, user_id, history, window, column, int(item), k
            )
        out.append(source.evidence(user_id, int(item), window, user_vector, effects=column))
    return out


# -- evaluation -----------------------------------------------------------------------------------
@dataclass
class _Tally:
    served: int = 0
    grounded: int = 0
    own_texts: int = 0  # texts the explainer wrote itself (LLM: before fallback)
    hallucinated: int = 0
    llm_asked: int = 0
    llm_passed: int = 0
    necessity_cases: int = 0
    necessity_hits: int = 0
    history_cited: int = 0  # evidences citing history items at all (coverage of PN)


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def evaluate(
    bundle: Bundle,
    explainer_kind: str,
    n_users: int,
    k: int = 10,
    seed: int = 0,
    batch: bool = False,
    llm_settings: Any = None,
    progress: bool = True,
    attribution: str = "similarity",
    dump: Path | None = None,
) -> dict[str, Any]:
    from embeddings.inference import UserEncoder
    from explain.cache import CachedExplainer
    from explain.llm import LLMExplainer, LLMOutcome
    from explain.template import TemplateExplainer

    source = BundleEvidence(bundle)
    checker = source.catalogue_checker()
    encoder = UserEncoder(bundle)
    template = TemplateExplainer()
    llm: LLMExplainer | None = None
    if explainer_kind == "llm":
        llm = LLMExplainer(llm_settings, checker=checker, template=template)
        started = time.perf_counter()
        llm.warm_up()
        logging.getLogger(__name__).info("model loaded in %.1f s", time.perf_counter() - started)
        print(f"model loaded in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    elif explainer_kind != "template":
        raise ConfigError(f"unknown explainer {explainer_kind!r}; expected template or llm")
    cache = CachedExplainer(llm if llm is not None else template, bundle_version=bundle.version)

    candidates = sorted(u for u, items in bundle.history.items() if len(items) >= 2)
    if not candidates:
        raise DataError(f"bundle {bundle.path} has no user with two or more history items")
    users = random.Random(seed).sample(candidates, min(n_users, len(candidates)))

    tally = _Tally()
    samples: list[dict[str, Any]] = []
    cold_ms: list[float] = []
    cached_ms: list[float] = []
    bar = _progress_bar(users, progress)
    for user_id in bar:
        history = [int(i) for i in bundle.history[user_id]]
        history_ids = [source.item_ids[i] for i in history]
        profile = user_profile(bundle, user_id)
        user_vector = encoder.encode(profile, history_ids, user_id)
        top, _ = bundle.retriever.search(user_vector, k, exclude=history)
        evidences = user_evidences(
            bundle, source, encoder, user_id, profile, history, user_vector, top, k, attribution
        )
        tally.history_cited += sum(bool(ev.history_items) for ev in evidences)

        outcomes: list[LLMOutcome] = []
        if batch:
            started = time.perf_counter()
            outcomes = _explain(llm, template, evidences)
            cold_ms += [1000 * (time.perf_counter() - started) / max(len(evidences), 1)] * len(evidences)
        else:
            for ev in evidences:
                started = time.perf_counter()
                outcomes += _explain(llm, template, [ev])
                cold_ms.append(1000 * (time.perf_counter() - started))
        for ev, outcome in zip(evidences, outcomes, strict=True):
            cache.put(ev, outcome.explanation)
            started = time.perf_counter()
            cache.explain([ev])
            cached_ms.append(1000 * (time.perf_counter() - started))
            _score(tally, checker, ev, outcome, llm is not None)
            if dump is not None:
                samples.append(_sample(ev, outcome))
            cited = _cited_history(checker, ev, outcome.explanation.text)
            if cited:
                tally.necessity_cases += 1
                kept = [i for i in history if source.item_ids[i] not in cited]
                counter_vector = encoder.encode(profile, [source.item_ids[i] for i in kept], user_id)
                counter_top, _ = bundle.retriever.search(counter_vector, k, exclude=history)
                item_index = source.item_ids.index(ev.item_id)
                tally.necessity_hits += int(item_index not in {int(i) for i in counter_top})
    if llm is not None:
        llm.close()
    if dump is not None:
        dump.parent.mkdir(parents=True, exist_ok=True)
        dump.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in samples), "utf-8")
    print(
        f"history cited in {tally.history_cited}/{tally.served} evidences; "
        f"PN measured on {tally.necessity_cases} explanations naming history items",
        file=sys.stderr,
    )

    n = tally.served
    return {
        "explainer": explainer_kind,
        "n": n,
        "grounded_rate": tally.grounded / n if n else 0.0,
        "llm_pass_rate": (tally.llm_passed / tally.llm_asked if tally.llm_asked else 0.0) if llm else None,
        "hallucinated_entity_rate": tally.hallucinated / tally.own_texts if tally.own_texts else 0.0,
        "necessity": tally.necessity_hits / tally.necessity_cases if tally.necessity_cases else 0.0,
        "p50_ms": _percentile(cold_ms, 50),
        "p95_ms": _percentile(cold_ms, 95),
        "cached_p50_ms": _percentile(cached_ms, 50),
    }


def _explain(llm: Any, template: Any, evidences: list[Evidence]) -> list[Any]:
    from explain.llm import LLMOutcome

    if llm is not None:
        return list(llm.explain_detailed(evidences))
    return [LLMOutcome(e, None, None) for e in template.explain(evidences)]


def _sample(ev: Evidence, outcome: Any) -> dict[str, Any]:
    return {
        "user_id": ev.user_id,
        "item_id": ev.item_id,
        "text": outcome.explanation.text,
        "source": outcome.explanation.source,
        "llm_text": outcome.llm_text,
        "problems": outcome.grounding.problems if outcome.grounding else None,
        "error": outcome.error,
        "cited_history": [h.item_id for h in ev.history_items],
    }


def _score(tally: _Tally, checker: GroundingChecker, ev: Evidence, outcome: Any, is_llm: bool) -> None:
    tally.served += 1
    tally.grounded += int(checker.check(outcome.explanation.text, ev).grounded)
    if is_llm:
        if outcome.llm_text is not None and outcome.grounding is not None:
            tally.llm_asked += 1
            tally.llm_passed += int(outcome.grounding.grounded)
            tally.own_texts += 1
            tally.hallucinated += int(outcome.grounding.hallucinated)
        elif outcome.error is not None:
            tally.llm_asked += 1  # a failed or late model did not pass
    else:
        tally.own_texts += 1
        tally.hallucinated += int(checker.check(outcome.explanation.text, ev).hallucinated)


def _cited_history(checker: GroundingChecker, ev: Evidence, text: str) -> set[str]:
    """History item ids the served text names."""
    used = set(checker.check(text, ev).used_evidence)
    return {h.item_id for h in ev.history_items if h.title in used}


def _progress_bar(users: list[str], enabled: bool) -> Any:
    if not enabled:
        return users
    from tqdm import tqdm

    return tqdm(users, desc="explaining", unit="user", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from embeddings.bundle import Bundle
    from explain.llm_backends import LLMSettings

    if args.users < 1 or args.k < 1:
        raise ConfigError("--users and --k must be at least 1")
    bundle = Bundle.load(args.bundle)
    settings = LLMSettings(
        backend=args.llm_backend,
        timeout_s=args.llm_timeout,
        openai_base_url=args.openai_base_url,
        openai_model=args.openai_model,
    )
    result = evaluate(
        bundle,
        args.explainer,
        args.users,
        k=args.k,
        seed=args.seed,
        batch=args.batch,
        llm_settings=settings,
        progress=not args.quiet,
        attribution=args.attribution,
        dump=args.dump,
    )
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", "utf-8")
    print(
        f"bundle {bundle.version} ({bundle.manifest.get('dataset_name', '?')}), "
        f"{platform.processor() or platform.machine()}",
        file=sys.stderr,
    )
    return 0
