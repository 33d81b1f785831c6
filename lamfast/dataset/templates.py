"""The Jinja2 environment shared by the report and the explorer pages.

Both pages are rendered from ``report_assets/``; keeping the environment here lets the report link
to explorer pages without either page module importing the other.
"""

from __future__ import annotations

import math

ASSETS = "report_assets"


def template_env():
    """A Jinja2 environment over ``lamfast/dataset/report_assets`` (autoescaped ``.j2`` files),
    with a ``finite`` test for values that may be NaN or infinite."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("lamfast.dataset", ASSETS), autoescape=select_autoescape(["j2"]),
                      keep_trailing_newline=True)
    env.tests["finite"] = lambda v: math.isfinite(v)
    return env


def inline_asset(env, name: str):
    """The text of an asset, marked safe for inlining: pages are single files that open from disk."""
    from markupsafe import Markup

    return Markup(env.loader.get_source(env, name)[0])
