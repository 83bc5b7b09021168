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


def test_the_code_editor_bundle_is_built_from_the_lockfile_by_make_and_never_committed():
    import json
    import subprocess

    makefile = (ROOT / "Makefile").read_text()
    for target in ("test", "demo"):
        deps = re.search(rf"^{target}:(.*)$", makefile, re.M)
        assert deps and "static-build" in deps.group(1).split(), f"make {target} must build the editor bundle"
    recipe = re.search(r"^\$\(EDITOR_BUNDLE\):.*\n\t(.+)$", makefile, re.M)
    assert recipe and "npm ci" in recipe.group(1) and "npm run" in recipe.group(1)
    lock = json.loads((ROOT / "frontend" / "package-lock.json").read_text())
    assert lock["lockfileVersion"] >= 3
    packages = lock["packages"]
    assert {"node_modules/@codemirror/view", "node_modules/@codemirror/lang-python", "node_modules/esbuild"} <= set(
        packages
    )
    assert all(p.get("integrity") for name, p in packages.items() if name and not p.get("link")), "unpinned package"
    # Built, git-ignored output and dependencies: present after the build, absent from git.
    ignored = subprocess.run(
        ["git", "check-ignore", "static/js/build/editor.js", "frontend/node_modules/x"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    ).stdout.split()
    assert ignored == ["static/js/build/editor.js", "frontend/node_modules/x"]
    assert finders.find("js/build/editor.js"), "run `make static-build` (make test does) before the tests"
