"""Is an explanation true to its evidence? A text passes only if it

- names no item title, category or attribute of the catalogue that the evidence does not hold
  (the whole catalogue is scanned, so an invented reason that happens to be a real product is
  caught),
- uses at least one piece of the evidence when there is any,
- states no number the evidence does not hold,
- stays within a length bound, and
- leaks neither the prompt nor markup.

Matching works on word tokens, longest name first, so "Toy Story 2" is one mention and not
also a mention of "Toy Story".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from explain.evidence import Evidence
from explain.template import format_lift

_TOKEN = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_YEAR_SUFFIX = re.compile(r"\s*\(\d{4}\)\s*$")
_TRAILING_ARTICLE = re.compile(r"^(?P<body>.+),\s*(?P<article>The|A|An|Les|La|Le|Il|El|Das|Die|Der)$")
_SEGMENT_WORDS = re.compile(
    r"\b(shoppers|customers|people|users|others|viewers|buyers|segment|group)\b", re.IGNORECASE
)
# Role tags, chat-template tokens, markup and prompt vocabulary that must never reach a shopper.
_LEAK_MARKERS = ("<", ">", "```", "{", "}", "[/", "im_start", "im_end", "http://", "https://", "**", "##")
_LEAK_WORDS = re.compile(
    r"\b(system|assistant|prompt|instructions?|facts|evidence|json|as an ai)\b|^\s*(user|answer)\s*:",
    re.IGNORECASE,
)
# Anything quoted must be a cited title: a small model misspells titles or invents new ones.
_QUOTED = re.compile(r"[\"“”][^\"“”]*[A-Za-z0-9][^\"“”]*[\"“”]")
_FINISHED = re.compile(r"[.!?][\"'”’)]*$")
# Single-word names are common words too ("Heat", "Drama"): titles of one word only count
# when written capitalised, and inside a sentence.
_MIN_SINGLE_WORD_TITLE = 4


def _tokens(text: str) -> list[tuple[str, int, int]]:
    text = text.replace("\u2019", "'")
    return [(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def title_variants(title: str) -> list[str]:
    """Ways a text may name a catalogue title: as is, without the year, article moved to the front."""
    variants = [title]
    bare = _YEAR_SUFFIX.sub("", title)
    variants.append(bare)
    moved = _TRAILING_ARTICLE.match(bare)
    if moved:
        variants += [f"{moved['article']} {moved['body']}", moved["body"]]
    return list(dict.fromkeys(v for v in variants if v.strip()))


def category_variants(category: str) -> list[str]:
    variants = [category]
    if category.endswith("y") and not category.endswith(("ay", "ey", "oy", "uy")):
        variants.append(category[:-1] + "ies")
    elif not category.endswith("s"):
        variants.append(category + "s")
    return variants


@dataclass(frozen=True)
class GroundingResult:
    grounded: bool
    problems: list[str] = field(default_factory=list)
    unsupported_entities: list[str] = field(default_factory=list)  # named but absent from the evidence
    used_evidence: list[str] = field(default_factory=list)
    unknown_quotes: list[str] = field(
        default_factory=list
    )  # quoted names no evidence holds (misspelt, invented)

    @property
    def hallucinated(self) -> bool:
        """Names a thing the evidence does not hold: another catalogue entry, or an invented one."""
        return bool(self.unsupported_entities or self.unknown_quotes)


@dataclass(frozen=True)
class _Mention:
    start: int
    end: int
    names: frozenset[tuple[str, str]]  # (kind, canonical name): one spelling may name several things


class GroundingChecker:
    """Checks texts against their evidence and the whole catalogue's names."""

    def __init__(
        self,
        catalogue_titles: Iterable[str],
        catalogue_categories: Iterable[str],
        catalogue_attributes: Iterable[str] = (),
        max_chars: int = 320,
        max_sentences: int = 3,
        prompt_texts: Sequence[str] = (),
    ) -> None:
        self.max_chars = max_chars
        self.max_sentences = max_sentences
        # first lowercase token -> list of (token sequence, kind, name, single-word case rule)
        self._index: dict[str, list[tuple[tuple[str, ...], str, str, str | None]]] = {}
        self._prompt_shingles: set[tuple[str, ...]] = set()
        self.add_names(dict.fromkeys(catalogue_titles), dict.fromkeys(catalogue_categories))
        for attribute in dict.fromkeys(catalogue_attributes):
            self._add(str(attribute), "attribute", str(attribute), case_rule=False)
        self.add_prompt_texts(prompt_texts)

    def add_names(self, titles: Iterable[str] = (), categories: Iterable[str] = ()) -> None:
        """Extra names to catch, e.g. the prompt's example products, which no evidence holds."""
        for title in titles:
            for variant in title_variants(str(title)):
                self._add(variant, "title", str(title))
        for category in categories:
            for variant in category_variants(str(category)):
                self._add(variant, "category", str(category), case_rule=False)

    def add_prompt_texts(self, texts: Iterable[str]) -> None:
        """Prompt wording that a text must not copy (five words in a row)."""
        self._prompt_shingles |= {s for text in texts for s in _shingles(text, 5)}

    def _add(self, spelling: str, kind: str, name: str, case_rule: bool = True) -> None:
        toks = tuple(t.lower() for t, _, _ in _tokens(spelling))
        if not toks:
            return
        exact: str | None = None
        if len(toks) == 1 and case_rule:
            raw = _tokens(spelling)[0][0]
            if len(raw) < _MIN_SINGLE_WORD_TITLE or not raw[0].isupper():
                return
            exact = raw
        self._index.setdefault(toks[0], []).append((toks, kind, name, exact))

    def mentions(self, text: str) -> list[_Mention]:
        """Non-overlapping catalogue names in `text`, longest match first at each position."""
        toks = _tokens(text)
        lower = [t.lower() for t, _, _ in toks]
        out: list[_Mention] = []
        i = 0
        while i < len(toks):
            best_len = 0
            names: set[tuple[str, str]] = set()
            for seq, kind, name, exact in self._index.get(lower[i], ()):
                n = len(seq)
                if n < best_len or tuple(lower[i : i + n]) != seq:
                    continue
                if exact is not None and (toks[i][0] != exact or _sentence_start(text, toks[i][1])):
                    continue
                if n > best_len:
                    best_len, names = n, set()
                names.add((kind, name))
            if best_len:
                out.append(_Mention(toks[i][1], toks[i + best_len - 1][2], frozenset(names)))
                i += best_len
            else:
                i += 1
        return out

    def check(self, text: str, evidence: Evidence) -> GroundingResult:
        problems: list[str] = []
        stripped = text.strip()
        if not stripped:
            return GroundingResult(False, ["empty text"])
        if len(stripped) > self.max_chars:
            problems.append(f"longer than {self.max_chars} characters")
        if len(re.findall(r"[.!?](\s|$)", stripped)) > self.max_sentences:
            problems.append(f"more than {self.max_sentences} sentences")

        allowed = _allowed_names(evidence)
        reason_names = _reason_names(evidence)
        used: list[str] = []
        unsupported: list[str] = []
        cited_spans = _verbatim_spans(stripped, evidence.cited_titles())
        for mention in self.mentions(stripped):
            hits = [name for name in mention.names if name in allowed]
            if not hits:
                unsupported.append(sorted(n for _, n in mention.names)[0])
                continue
            cited_spans.append((mention.start, mention.end))
            used += [name for kind, name in hits if (kind, name) in reason_names]
        if unsupported:
            problems.append("names things absent from the evidence: " + ", ".join(sorted(set(unsupported))))

        # Titles are data and may hold anything ("<script>"): judge only the text around them.
        outside = _blank_spans(stripped, cited_spans)
        if any(marker in outside for marker in _LEAK_MARKERS) or _LEAK_WORDS.search(outside):
            problems.append("leaks markup or prompt wording")
        unknown_quotes = [m.group(0).strip('"“” ') for m in _QUOTED.finditer(outside)]
        if unknown_quotes:
            problems.append("quotes a name that is not in the evidence")
        if not _FINISHED.search(stripped):
            problems.append("unfinished sentence")
        if self._prompt_shingles & _shingles(outside, 5):
            problems.append("copies the prompt")
        bad_numbers = set(_NUMBER.findall(outside)) - _allowed_numbers(evidence)
        if bad_numbers:
            problems.append("states numbers absent from the evidence: " + ", ".join(sorted(bad_numbers)))

        if evidence.segment is not None and _SEGMENT_WORDS.search(outside):
            used.append("segment")
        for match in evidence.profile_matches:
            if match.attribute != "interest" and match.value.lower() in outside.lower():
                used.append(f"profile:{match.attribute}")
        if evidence.has_reasons and not used:
            problems.append("uses none of the evidence")
        return GroundingResult(
            grounded=not problems,
            problems=problems,
            unsupported_entities=sorted(set(unsupported)),
            used_evidence=list(dict.fromkeys(used)),
            unknown_quotes=unknown_quotes,
        )


def _allowed_names(evidence: Evidence) -> set[tuple[str, str]]:
    allowed = {("title", t) for t in evidence.cited_titles()}
    allowed |= {("category", c) for c in evidence.cited_categories()}
    allowed |= {("attribute", m.value) for m in evidence.profile_matches}
    if evidence.segment is not None:
        allowed.add(("attribute", evidence.segment.label))
    return allowed


def _reason_names(evidence: Evidence) -> set[tuple[str, str]]:
    """Names whose mention counts as using the evidence (the item's own title does not)."""
    names = {("title", h.title) for h in evidence.history_items}
    names |= {("title", f.title) for f in evidence.feedback}
    names |= {("category", c) for c in evidence.shared_categories}
    names |= {("category", m.value) for m in evidence.profile_matches if m.attribute == "interest"}
    return names


def _allowed_numbers(evidence: Evidence) -> set[str]:
    texts = [*evidence.cited_titles(), *evidence.cited_categories()]
    numbers = {n for t in texts for n in _NUMBER.findall(t)}
    seg = evidence.segment
    if seg is not None:
        numbers |= {str(seg.item_rank), format_lift(seg.lift), str(seg.segment_size)}
    for m in evidence.profile_matches:
        numbers |= set(_NUMBER.findall(m.value))
        if m.lift is not None:
            numbers.add(format_lift(m.lift))
    numbers |= {str(n) for n in range(1, len(evidence.history_items) + len(evidence.feedback) + 1)}
    return numbers


def _verbatim_spans(text: str, titles: Iterable[str]) -> list[tuple[int, int]]:
    """Where cited titles appear character for character, markup and all."""
    spans: list[tuple[int, int]] = []
    lowered = text.lower()
    for title in titles:
        needle = title.lower()
        start = lowered.find(needle) if needle else -1
        while start >= 0:
            spans.append((start, start + len(needle)))
            start = lowered.find(needle, start + len(needle))
    return spans


def _sentence_start(text: str, pos: int) -> bool:
    before = text[:pos].rstrip(" \"'“‘(")
    return not before or before[-1] in ".!?:"


def _blank_spans(text: str, spans: Sequence[tuple[int, int]]) -> str:
    chars = list(text)
    for start, end in spans:
        # Quotes around a cited title belong to the citation, not to the prose.
        lo = start - 1 if start > 0 and text[start - 1] in "\"'“‘" else start
        hi = end + 1 if end < len(text) and text[end] in "\"'”’" else end
        for k in range(lo, min(hi, len(chars))):
            chars[k] = " "
    return "".join(chars)


def _shingles(text: str, n: int) -> set[tuple[str, ...]]:
    words = [t.lower() for t, _, _ in _tokens(text)]
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}
