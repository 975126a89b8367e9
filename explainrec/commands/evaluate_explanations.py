"""`explainrec evaluate-explanations`: are the explanations true, needed and fast?

    explainrec evaluate-explanations --bundle artifacts/bundles --users 50 \
        --explainer llm --json artifacts/explanations-llm.json

For each sampled user with a history, the service's own `Recommender` answers the top-k and
builds the evidence it would serve (`backend.evidence`: history items cited by counterfactual
necessity), then the chosen explainer writes the texts. Reports (keys as in issue 6):

- grounded_rate: share of served explanations passing the grounding check;
- llm_pass_rate: share of LLM texts passing it before any fallback (null for the template);
- hallucinated_entity_rate: share of the explainer's own texts (the LLM's before fallback)
  naming a catalogue title/category absent from the evidence;
- necessity (CountER-style PN): remove the history items the served text names, re-encode the
  user as the service does, re-rank, and count the share of items that leave the top-k;
- p50/p95 latency per explanation, cold, and the p50 of a cached repeat.

On stderr: how many explanations cite history at all (PN is measured on those) and the time
spent building evidence per request.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from explainrec.cli_options import print_json_report
from explainrec.errors import ConfigError, DataError
from explainrec.provenance import environment

if TYPE_CHECKING:
    from embeddings.bundle import Bundle
    from explain.evidence import Evidence
    from explain.grounding import GroundingChecker

ATTRIBUTIONS = ("counterfactual", "effect", "similarity")  # backend.evidence.ATTRIBUTIONS, lazily


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
        choices=ATTRIBUTIONS,
        default="counterfactual",
        help="how history items are cited: counterfactual (served: the smallest set, up to 3, whose "
        "removal drops the item from the top-k), or for comparison by leave-one-out effect or by "
        "embedding similarity",
    )
    parser.add_argument(
        "--llm-backend", choices=("transformers", "llamacpp", "openai"), default="transformers"
    )
    parser.add_argument("--llm-timeout", type=float, default=30.0, help="seconds per explain call")
    parser.add_argument("--openai-base-url", default=None)
    parser.add_argument("--openai-model", default=None)
    parser.add_argument("--dump", type=Path, default=None, help="write every explanation here (JSON lines)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


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
    history_cited: int = 0  # evidences citing history items at all


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
    attribution: str = "counterfactual",
    dump: Path | None = None,
) -> dict[str, Any]:
    from backend.evidence import catalogue_checker
    from backend.recommender import Recommender, RecQuery, Shopper
    from explain.cache import CachedExplainer
    from explain.llm import LLMExplainer, LLMOutcome
    from explain.template import TemplateExplainer

    if attribution not in ATTRIBUTIONS:
        raise ConfigError(f"unknown attribution {attribution!r}; expected one of {ATTRIBUTIONS}")
    checker = catalogue_checker(bundle)
    template = TemplateExplainer()
    recommender = Recommender(bundle, template)
    recommender.evidence_source.attribution = attribution  # type: ignore[assignment]
    item_ids = bundle.feature_spec.item_ids
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
    evidence_ms: list[float] = []
    query = RecQuery(k=k)
    bar = _progress_bar(users, progress)
    for user_id in bar:
        shopper = Shopper(user_id)
        served = recommender.recommend(shopper, query).items
        started = time.perf_counter()
        evidences = recommender.evidences(shopper, query, served)
        evidence_ms.append(1000 * (time.perf_counter() - started))
        history = [int(i) for i in bundle.history[user_id]]
        remove = recommender.removal_encoder(shopper)
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
            if cited and remove is not None:
                tally.necessity_cases += 1
                removed = frozenset(i for i in history if item_ids[i] in cited)
                counter_top, _ = bundle.retriever.search(remove([removed])[0], k, exclude=history)
                item_index = item_ids.index(ev.item_id)
                tally.necessity_hits += int(item_index not in {int(i) for i in counter_top})
    if llm is not None:
        llm.close()
    if dump is not None:
        dump.parent.mkdir(parents=True, exist_ok=True)
        dump.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in samples), "utf-8")
    print(
        f"history cited in {tally.history_cited}/{tally.served} evidences; PN measured on "
        f"{tally.necessity_cases} explanations naming history items ({tally.necessity_hits} left the "
        f"top-{k}); evidence p50 {_percentile(evidence_ms, 50):.1f} ms per request of {k}",
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
    print_json_report({**result, "environment": environment()}, args.json)
    print(
        f"bundle {bundle.version} ({bundle.manifest.get('dataset_name', '?')}), "
        f"{platform.processor() or platform.machine()}",
        file=sys.stderr,
    )
    return 0
