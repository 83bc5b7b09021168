"""Every static file a template asks for exists: in production (hashed manifest storage) a missing one is a 500."""

from __future__ import annotations

import re

from django.contrib.staticfiles import finders

from .conftest import ROOT

STATIC_TAG = re.compile(r"""\{%\s*static\s+['"]([^'"]+)['"]""")


def _templates():
    for root in [ROOT / "templates", *ROOT.glob("*/templates"), *ROOT.glob("*/*/templates")]:
        if root.is_dir():
            yield from root.rglob("*.html")


def test_every_static_reference_in_the_projects_templates_exists():
    referenced = {
        (path.relative_to(ROOT).as_posix(), name)
        for path in _templates()
        for name in STATIC_TAG.findall(path.read_text(errors="replace"))
    }
    assert referenced, "no {% static %} references found"
    missing = sorted((template, name) for template, name in referenced if finders.find(name) is None)
    assert not missing, f"templates reference static files that do not exist: {missing}"
