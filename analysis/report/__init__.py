"""The report of ``python -m analysis``, by question: what it says and how it is drawn.

- ``render``: sections rendered as Markdown and as a self-contained HTML page (the names below; this package
  was the module analysis/report.py, so ``from analysis import report; report.Section`` still works);
- ``sections``: the report's sections from the answer tables and figures;
- ``figures``: the figures, per setting; ``plots`` (shared style in ``plot_style``) and ``hardware_plots``
  draw them;
- ``methods``, ``findings``, ``checks``: the Methods section, the findings and caveats, the checks.
"""

from analysis.report.render import (
    CSS,
    MAX_ROWS,
    SCRIPT,
    Block,
    Section,
    anchors,
    cells,
    html_table,
    load_lines,
    markdown_table,
    render_html,
    render_markdown,
)

_cells = cells  # the old private name (tests import it)

__all__ = [
    "CSS",
    "MAX_ROWS",
    "SCRIPT",
    "Block",
    "Section",
    "_cells",
    "anchors",
    "cells",
    "html_table",
    "load_lines",
    "markdown_table",
    "render_html",
    "render_markdown",
]
