"""``fastmatch report``: the fleet's migration picture, as data (:func:`report_figures`) and as
one self-contained HTML page (:func:`render_html`)."""

from .figures import report_figures

__all__ = ["report_figures"]
