"""``fastmatch report``: the fleet's migration picture, as data (:func:`report_figures`) and as
one self-contained HTML page (:func:`render_html`, which needs the ``report`` extra)."""

from .figures import drain_figures, input_facts, report_figures
from .page import render_html

__all__ = ["drain_figures", "input_facts", "render_html", "report_figures"]
