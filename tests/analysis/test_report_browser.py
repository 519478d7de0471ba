"""report.html in a real browser: headless Chromium (the Debian package, /usr/bin/chromium) driven by
Playwright, no browser downloaded. Every image loads, every table-of-contents link lands on its section,
a header click sorts its column (ascending, then descending), the filter box hides rows, and wide tables
scroll inside their box. Skipped without Chromium or Playwright, except under CI (CI=true, set by .ci/run),
where their absence is a failure."""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"

# One worker builds the known tree's report for both modules (a session fixture; ~10 s with figures)
pytestmark = pytest.mark.xdist_group("report")


def _need(ok: object, why: str) -> None:
    if not ok:
        if IN_CI:
            pytest.fail(f"{why} (CI installs it: .ci/run)")
        pytest.skip(why)


@pytest.fixture
def page(request):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    _need(sync_playwright, "playwright is not installed (pip install -e '.[test]')")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    _need(chromium, "no chromium on PATH (apt-get install chromium)")
    known_report = request.getfixturevalue("known_report")  # built only where a browser can open it
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.set_default_timeout(30_000)  # catches a hang only
            page.goto((known_report / "report.html").as_uri())
            yield page
        finally:
            browser.close()


def test_every_image_loads(page, known_report):
    images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
    pngs = sorted((known_report / "figures").glob("*.png"))
    assert len(images) >= len(pngs) >= 5
    assert all(done and w > 0 and h > 0 for done, w, h in images), images


def test_every_toc_link_lands_on_its_section(page):
    links = page.locator("nav#toc a")
    targets = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert len(targets) >= 10
    for i, target in enumerate(targets):
        anchor = target.removeprefix("#")
        top = page.evaluate(
            "id => { const e = document.getElementById(id); "
            "return e && e.getBoundingClientRect().top + window.scrollY; }",
            anchor,
        )
        assert top is not None, f"{target}: no element with that id"
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")  # away from it
        links.nth(i).click()
        page.wait_for_function("h => location.hash === h", arg=target)
        # Landed: the section's top at the window's top, or the page scrolled as far as it goes.
        page.wait_for_function(
            "([top]) => Math.abs(window.scrollY - Math.min(top, document.documentElement.scrollHeight "
            "- window.innerHeight)) <= 2",
            arg=[top],
        )
        box = page.evaluate("id => document.getElementById(id).getBoundingClientRect().top", anchor)
        assert -2 <= box < page.viewport_size["height"], (target, box)


def _table(page, csv: str):
    return page.locator(f"div.tbl:has(a[href='tables/{csv}.csv'])")


def _rows(table) -> list[list[str]]:
    return table.locator("tbody tr").evaluate_all(
        "rows => rows.filter(r => !r.hidden).map(r => Array.from(r.cells).map("
        "c => c.hasAttribute('data-sort') ? c.getAttribute('data-sort') : c.textContent))"
    )


def test_clicking_a_numeric_header_sorts_its_rows(page):
    table = _table(page, "winners")
    heads = table.locator("thead th").all_inner_texts()
    col = heads.index("fastest_p50_ms")
    before = _rows(table)
    values = [float(r[col]) for r in before]
    assert len(values) >= 10 and values != sorted(values)  # not already in order: the click must do it
    header = table.locator("thead th").nth(col)
    header.click()
    ascending = _rows(table)
    assert [float(r[col]) for r in ascending] == sorted(values)
    assert sorted(map(tuple, ascending)) == sorted(map(tuple, before))  # whole rows moved, none lost
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    descending = _rows(table)
    assert [float(r[col]) for r in descending] == sorted(values, reverse=True)
    assert header.get_attribute("aria-sort") == "descending"
    # Numeric, not text order: the input sizes (32, 48, 64) sort as numbers.
    size = table.locator("thead th").nth(heads.index("input_size"))
    size.click()
    sizes = [int(r[heads.index("input_size")]) for r in _rows(table)]
    assert sizes == sorted(sizes) and len(set(sizes)) > 1


def test_filter_box_hides_rows_without_the_text(page):
    table = _table(page, "winners")
    total = len(_rows(table))
    table.locator("input.filter").fill("v100")
    shown = table.locator("tbody tr:not([hidden])").all_inner_texts()
    assert 0 < len(shown) < total and all("v100" in r for r in shown)
    assert table.locator(".count").inner_text() == f"{len(shown)} of {total} rows"
    table.locator("input.filter").fill("")
    assert len(_rows(table)) == total


def test_wide_tables_scroll_inside_their_box(page):
    widths = page.evaluate(
        "Array.from(document.querySelectorAll('div.scroll')).map(d => [d.scrollWidth, d.clientWidth])"
    )
    assert any(scroll > client for scroll, client in widths)  # at least one table is wider than the page
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # the page itself is not
