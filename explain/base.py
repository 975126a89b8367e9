"""What every explainer returns, and the one method it must have."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from explain.evidence import Evidence

ExplanationSource = Literal["llm", "template"]


@dataclass(frozen=True)
class Explanation:
    """Text shown to the shopper, which explainer wrote it, and the evidence it rests on."""

    text: str
    source: ExplanationSource
    evidence: dict[str, Any] = field(default_factory=dict)
    # A fallback caused by a timeout or model error: worth retrying, so caches skip it.
    transient: bool = field(default=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "source": self.source, "evidence": self.evidence}


class Explainer(Protocol):
    """Turns evidence into explanations, one per evidence, in the same order."""

    def explain(self, evidences: Sequence[Evidence]) -> list[Explanation]: ...
