"""The apps' one-way dependency order: config → annotation → traces → accounts.

Read from the source: every import in every module of an app, at any depth (imports inside
functions count too), so a back-edge cannot hide behind a late import.
"""

import ast
from pathlib import Path

from django.test import SimpleTestCase

BASE_DIR = Path(__file__).resolve().parents[1]
# Each app with the project apps it may import; anything else of the project is a back-edge.
ALLOWED = {
    "accounts": set(),
    "traces": {"accounts"},
    "annotation": {"traces", "accounts"},
}
PROJECT_PACKAGES = {"config", *ALLOWED}


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules a file imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    parts = path.relative_to(BASE_DIR).with_suffix("").parts
    here = parts[:-1]  # the package the file is in
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
                names.add(module)
                names.update(f"{module}.{alias.name}" for alias in node.names)
            elif node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def app_modules(app: str):
    for path in sorted((BASE_DIR / app).rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


class DependencyOrderTests(SimpleTestCase):
    def test_no_app_imports_an_app_above_it(self):
        back_edges = []
        for app, allowed in ALLOWED.items():
            for path in app_modules(app):
                for name in imported_modules(path):
                    top = name.split(".")[0]
                    if top in PROJECT_PACKAGES and top != app and top not in allowed:
                        back_edges.append(f"{path.relative_to(BASE_DIR)} imports {name}")
        self.assertEqual(back_edges, [])

    def test_no_module_imports_another_apps_views(self):
        crossings = []
        for app in ALLOWED:
            for path in app_modules(app):
                for name in imported_modules(path):
                    parts = name.split(".")
                    is_view_module = any(p == "views" or p.endswith("_views") for p in parts[1:])
                    if parts[0] in ALLOWED and parts[0] != app and is_view_module:
                        crossings.append(f"{path.relative_to(BASE_DIR)} imports {name}")
        self.assertEqual(crossings, [])
