"""Static checks on the shipped UI files; they run without a browser.

The browser tests prove the pages work; these keep the rules that make them safe from eroding:
no HTML-parsing sinks for server data, the stable test ids, and the vendored chart library
shipped with its licence and documented version.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "ui.md"
SOURCES = sorted((FRONTEND / "js").rglob("*.js"))
TEST_IDS = (
    "login-form",
    "profile-form",
    "rec-list",
    "rec-card",
    "rec-explanation",
    "evidence-chip",
    "feedback-like",
    "feedback-dismiss",
    "segment-plot",
    "segment-card",
)
# Ways a string can become markup or code in a page.
HTML_SINKS = re.compile(
    r"\.(innerHTML|outerHTML)\s*[+]?=|insertAdjacentHTML|document\.write|\beval\s*\(|new\s+Function\s*\("
    r"|createContextualFragment|DOMParser"
)


def test_sources_exist() -> None:
    assert (FRONTEND / "index.html").is_file()
    assert len(SOURCES) >= 5


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_no_html_sinks(source: Path) -> None:
    hits = [
        f"{source.name}:{number}: {line.strip()}"
        for number, line in enumerate(source.read_text("utf-8").splitlines(), start=1)
        if HTML_SINKS.search(line)
    ]
    assert not hits, "server data must be inserted as text, never parsed as HTML:\n" + "\n".join(hits)


def test_every_stable_test_id_is_rendered() -> None:
    code = "\n".join(p.read_text("utf-8") for p in SOURCES)
    missing = [tid for tid in TEST_IDS if f'"{tid}"' not in code]
    assert not missing, f"test ids not rendered anywhere: {missing}"


def test_chart_library_is_vendored_with_licence_and_documented_version() -> None:
    bundle = FRONTEND / "vendor" / "chart.umd.js"
    licence = FRONTEND / "vendor" / "chart.js.LICENSE.md"
    header = bundle.read_text("utf-8")[:300]
    match = re.search(r"Chart\.js v(\d+\.\d+\.\d+)", header)
    assert match, "vendor/chart.umd.js does not start with the Chart.js banner"
    assert "MIT" in licence.read_text("utf-8")
    documented = DOCS.read_text("utf-8")
    assert f"Chart.js {match.group(1)}" in documented, "docs/ui.md names another Chart.js version"
    assert 'src="vendor/chart.umd.js"' in (FRONTEND / "index.html").read_text("utf-8")
