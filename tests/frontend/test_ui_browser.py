"""The web UI in a real browser against the real server and a toy bundle.

Each test walks one shopper or merchandiser journey and saves screenshots under
test-artifacts/screenshots/ for a person to look at.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = pytest.mark.browser

Shot = Callable[..., Path]
PHONE = {"width": 390, "height": 844}


def _card_ids(page: Any) -> list[str]:
    return page.locator("[data-testid=rec-card]").evaluate_all("cards => cards.map(c => c.dataset.itemId)")


def _wait_for_cards(page: Any) -> None:
    page.locator("[data-testid=rec-card]").first.wait_for()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=rec-list]')?.closest('[aria-busy]')"
        "?.getAttribute('aria-busy') !== 'true'"
    )


def _fill_profile(page: Any, interests: int = 2) -> None:
    form = page.get_by_test_id("profile-form")
    form.get_by_label("Age").fill("29")
    form.get_by_label("Gender").select_option(index=1)
    form.get_by_label("Occupation").fill("engineer")
    form.get_by_label("Location").fill("Berlin")
    boxes = form.locator("input[name=interests]")
    boxes.first.wait_for()
    for index in range(interests):
        boxes.nth(index).check()


def _wait_for_change(page: Any, before: list[str]) -> list[str]:
    page.wait_for_function(
        "(before) => { const ids = [...document.querySelectorAll('[data-testid=rec-card]')]"
        ".map(c => c.dataset.itemId); return ids.length > 0 && ids.join() !== before.join(); }",
        arg=before,
    )
    return _card_ids(page)


def _fits_phone(page: Any) -> None:
    """Shrink to phone width and wait until nothing makes the page scroll sideways."""
    page.set_viewport_size(PHONE)
    try:
        page.wait_for_function(
            f"() => document.documentElement.scrollWidth <= {PHONE['width']}", timeout=3000
        )
    except PlaywrightTimeout as exc:
        width = page.evaluate("() => document.documentElement.scrollWidth")
        raise AssertionError(f"the page scrolls sideways on a phone ({width}px wide)") from exc


def _unlabelled_controls(page: Any) -> list[str]:
    return page.evaluate(
        "() => [...document.querySelectorAll('main input, main select, main button')]"
        ".filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')"
        " && !el.textContent.trim()).map(el => el.outerHTML)"
    )


def test_signup_through_profile_form_then_like_changes_list(page: Any, screenshot: Shot) -> None:
    page.goto("/#/new")
    _fill_profile(page)
    assert _unlabelled_controls(page) == []
    screenshot(page, "new-shopper-form")
    page.get_by_role("button", name="Show my picks").click()
    _wait_for_cards(page)

    explanations = page.get_by_test_id("rec-explanation")
    assert explanations.count() == page.get_by_test_id("rec-card").count() > 0
    assert explanations.first.inner_text().strip(), "a cold-start pick came without explanation text"
    assert page.get_by_test_id("evidence-chip").count() > 0
    screenshot(page, "new-shopper-picks")

    # Before the account exists, a like steers the cold-start picks...
    first = page.get_by_test_id("rec-card").first
    liked_title = first.locator("h3").inner_text()
    before = _card_ids(page)
    first.get_by_test_id("feedback-like").click()
    _wait_for_change(page, before)

    # ...and is saved as the new account's first feedback on signup.
    signup = page.get_by_test_id("signup-form")
    signup.get_by_label("Choose a shopper id").fill("ui-newcomer")
    signup.get_by_label("Password").fill("correct horse battery")
    signup.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/#/")
    _wait_for_cards(page)
    assert "ui-newcomer" in page.locator("#session").inner_text()
    chips = page.get_by_test_id("evidence-chip").all_inner_texts()
    assert any(liked_title in chip for chip in chips), f"{liked_title!r} is cited nowhere in {chips}"

    before = _card_ids(page)
    page.get_by_test_id("rec-card").first.get_by_test_id("feedback-like").click()
    after = _wait_for_change(page, before)
    assert after != before
    assert page.locator("#status").inner_text().startswith("Recommendations updated")
    assert page.locator("[data-testid=rec-card].is-new").count() == len(set(after) - set(before))
    screenshot(page, "after-like")


def test_login_as_existing_shopper_sees_personalised_recs(
    page: Any, live_server: Any, screenshot: Shot
) -> None:
    # An existing account, made through the API as another client would.
    response = httpx.post(
        f"{live_server.base_url}/api/v1/auth/signup",
        json={
            "username": "ui-returning",
            "password": "another long secret",
            "profile": {"interests": ["Garden"]},
        },
    )
    assert response.status_code in (200, 201), response.text

    page.goto("/")
    form = page.get_by_test_id("login-form")
    screenshot(page, "home-signed-out")
    form.get_by_label("Shopper id").fill("ui-returning")
    form.get_by_label("Password").fill("another long secret")
    form.get_by_role("button", name="Log in").click()
    _wait_for_cards(page)
    assert "ui-returning" in page.locator("#session").inner_text()

    # Two bundle shoppers with different planted tastes get different lists with history evidence.
    lists = []
    for option_index in (0, 1):
        page.get_by_role("button", name="Log out").click()
        demo = page.get_by_test_id("demo-form")
        demo.get_by_label("Shopper").select_option(index=option_index)
        demo.get_by_role("button", name="Shop as this shopper").click()
        _wait_for_cards(page)
        lists.append(_card_ids(page))
        history_chips = page.locator("[data-testid=evidence-chip][data-kind=history]")
        assert history_chips.count() > 0, "a shopper with history should see 'because you liked' evidence"
    assert lists[0] != lists[1]

    dismissed = lists[1][0]
    page.get_by_test_id("rec-card").first.get_by_test_id("feedback-dismiss").click()
    after = _wait_for_change(page, lists[1])
    assert dismissed not in after, "a dismissed product must leave the list"
    screenshot(page, "home-demo-shopper")

    _fits_phone(page)
    screenshot(page, "home-phone", full_page=False)


def test_dashboard_plots_one_point_group_per_segment(page: Any, live_server: Any, screenshot: Shot) -> None:
    segments = httpx.get(f"{live_server.base_url}/api/v1/segments").json()["segments"]
    page.goto("/#/segments")
    plot = page.get_by_test_id("segment-plot")
    plot.locator("canvas").wait_for()
    page.wait_for_function("() => window.Chart && Chart.getChart(document.querySelector('#segment-canvas'))")
    groups = page.evaluate(
        "() => Chart.getChart(document.querySelector('#segment-canvas')).data.datasets"
        ".map(d => ({id: d.segmentId, n: d.data.length}))"
    )
    point_groups = [g for g in groups if g["id"] != "__centroids__"]
    assert sorted(g["id"] for g in point_groups) == sorted(str(s["id"]) for s in segments)
    assert all(g["n"] > 0 for g in point_groups)
    assert any(g["id"] == "__centroids__" for g in groups)
    assert page.get_by_test_id("segment-card").count() == len(segments)
    assert _unlabelled_controls(page) == []

    # Hovering a segment's centroid on the plot shows that segment's profile...
    last = segments[-1]
    x, y = page.evaluate(
        "(c) => { const chart = Chart.getChart(document.querySelector('#segment-canvas'));"
        " const box = chart.canvas.getBoundingClientRect();"
        " return [box.left + chart.scales.x.getPixelForValue(c.x),"
        " box.top + chart.scales.y.getPixelForValue(c.y)]; }",
        last["centroid"],
    )
    page.mouse.move(x, y)
    selection = page.locator("#segment-selection")
    page.wait_for_function(
        "(name) => document.querySelector('#segment-selection').textContent.startsWith(name)",
        arg=last["name"],
    )
    # ...and clicking a segment card pins its profile.
    page.get_by_test_id("segment-card").first.get_by_role("button").click()
    page.mouse.move(0, 0)
    assert selection.inner_text().startswith(segments[0]["name"])
    assert page.get_by_test_id("segment-card").first.get_attribute("class").endswith("is-selected")
    screenshot(page, "segments-dashboard")
    _fits_phone(page)
    screenshot(page, "segments-phone", full_page=False)


def test_item_title_with_script_tag_shows_as_text(page: Any, live_server: Any, screenshot: Shot) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    found = httpx.get(f"{live_server.base_url}/api/v1/items", params={"q": "<script>"}).json()
    items = found if isinstance(found, list) else found["items"]
    hostile = next(item for item in items if "<script>" in item["title"])

    page.goto(f"/#/item/{hostile['item_id']}")
    heading = page.locator("h1#page-heading")
    heading.wait_for()
    page.get_by_test_id("similar-list").wait_for()
    assert heading.inner_text() == hostile["title"]
    assert page.locator("main script").count() == 0
    screenshot(page, "item-page-hostile-title")
    assert not dialogs, f"an item title ran as script: {dialogs}"
