"""The HTML report's structure, without a browser: the table of contents, the tables' sort keys and shown
values, the links to the full CSVs, and nothing fetched from elsewhere (tests/analysis/test_report_browser.py
drives the same page in Chromium)."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from analysis import report

# One worker builds the known tree's report for both modules (a session fixture; ~10 s with figures)
pytestmark = pytest.mark.xdist_group("report")


class Page(HTMLParser):
    """The parts of a report page the tests look at."""

    def __init__(self, text: str):
        super().__init__()
        self.toc: list[str] = []
        self.sections: list[str] = []
        self.hrefs: list[str] = []
        self.srcs: list[str] = []
        self.scripts: list[dict] = []
        self.tables = 0
        self.filters = 0
        self._in_toc = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "nav" and a.get("id") == "toc":
            self._in_toc = True
        elif tag == "a" and self._in_toc:
            self.toc.append(a["href"])
        elif tag == "a":
            self.hrefs.append(a["href"])
        elif tag == "section":
            self.sections.append(a["id"])
        elif tag == "table":
            self.tables += 1 if "sortable" in a.get("class", "").split() else 0
        elif tag == "input" and "filter" in a.get("class", "").split():
            self.filters += 1
        elif tag in ("img", "script", "link", "iframe"):
            (self.srcs if tag == "img" else self.scripts).append(a)

    def handle_endtag(self, tag):
        if tag == "nav":
            self._in_toc = False


def test_toc_links_every_section_by_a_unique_anchor(known_report):
    page = Page((known_report / "report.html").read_text())
    md = (known_report / "report.md").read_text()
    titles = re.findall(r"^## (.+)$", md, flags=re.M)
    assert len(titles) >= 10 and page.sections == report.anchors([report.Section(t) for t in titles])
    assert page.toc == [f"#{i}" for i in page.sections] and len(set(page.sections)) == len(page.sections)
    assert page.sections[:4] == ["summary", "methods", "the-answer", "coverage"]


def test_page_is_self_contained(known_report):
    text = (known_report / "report.html").read_text()
    page = Page(text)
    assert page.srcs and all(i["src"].startswith("data:image/png;base64,") for i in page.srcs)
    assert page.scripts == [{}]  # one inline script, nothing loaded from a file or a CDN
    assert "http://" not in text and "https://" not in text


def test_every_table_is_sortable_and_filterable_and_links_its_full_csv(known_report):
    text = (known_report / "report.html").read_text()
    page = Page(text)
    assert page.tables == text.count("<table") == page.filters >= 10
    csvs = [h for h in page.hrefs if h.endswith(".csv")]
    assert len(csvs) >= 10 and {"tables/winners.csv", "tables/summary.csv", "tables/oracle.csv"} <= set(csvs)
    for href in csvs:
        assert href.startswith("tables/") and (known_report / href).is_file(), href
    md = (known_report / "report.md").read_text()
    assert "Full table: [tables/winners.csv](tables/winners.csv)" in md


def test_numbers_shown_rounded_and_sorted_exactly():
    df = pd.DataFrame(
        {
            "model": ["b|x", "a", "c"],
            "input_size": [224.0, np.nan, 1024.0],  # float only because of the gap: shown as integers
            "batch_size": pd.array([1, 16, None], dtype="Int64"),
            "p50_ms": [1.234567, 1234.5678, 1e-5],
            "ok": [True, False, True],
        }
    )
    cells = report._cells(df)
    assert [c[1] for c in cells] == [("224", "224"), ("", ""), ("1024", "1024")]
    assert [c[2] for c in cells] == [("1", "1"), ("16", "16"), ("", "")]
    assert [c[3] for c in cells] == [("1.235", "1.234567"), ("1234.6", "1234.5678"), ("1e-05", "1e-05")]
    assert all(float(c[3][1]) == v for c, v in zip(cells, df["p50_ms"]))  # the key is the exact number
    assert [c[0] for c in cells] == [("b|x", None), ("a", None), ("c", None)]
    assert [c[4] for c in cells] == [("True", None), ("False", None), ("True", None)]
    page = report.html_table(df, "tables/x.csv")
    assert "<td data-sort='1.234567'>1.235</td>" in page and "<td data-sort='1024'>1024</td>" in page
    assert "<td>b|x</td>" in page and "href='tables/x.csv'" in page and "class='scroll'" in page
    md = report.markdown_table(df)
    assert "| b\\|x | 224 | 1 | 1.235 | True |" in md and "1024.0" not in md
    inf = report._cells(pd.DataFrame({"r": [math.inf, 0.5]}))
    assert inf[0][0] == ("inf", "Infinity")


def test_clipped_table_names_its_csv():
    df = pd.DataFrame({"i": range(report.MAX_ROWS + 5)})
    assert "... 5 more rows in tables/t.csv." in report.html_table(df, "tables/t.csv")
    assert report.html_table(df).count("<tr>") == report.MAX_ROWS + 1


def test_repeated_titles_get_distinct_anchors():
    S = report.Section
    assert report.anchors([S("Per fold"), S("Per fold!"), S("???"), S("GPUs compared")]) == [
        "per-fold",
        "per-fold-2",
        "section",
        "gpus-compared",
    ]
