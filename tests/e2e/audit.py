"""Checks a page as a keyboard and screen-reader user at 200% zoom would meet it: axe-core's
rules, sideways scroll at the viewport's width, and errors in the console.

axe-core comes from npm (package.json at the repository root; ``make test`` installs it).
It is added to each document through the DevTools protocol, which the page's
Content-Security-Policy does not govern, so the page keeps its real CSP and a style or
script the CSP blocks shows up as a console error.
"""

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings

AXE = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
FAILING = ("critical", "serious")
IMPACTS = ("critical", "serious", "moderate", "minor")

# Every rule, experimental ones too (label-content-name-mismatch is one); violations only.
RUN_AXE = """async () => {
  const experimental = axe.getRules(["experimental"]).map((rule) => [rule.ruleId, {enabled: true}]);
  const result = await axe.run(document, {
    rules: Object.fromEntries(experimental),
    resultTypes: ["violations"],
  });
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    targets: v.nodes.map((node) => node.target.join(" ")),
  }));
}"""

SCROLL_WIDTH = "() => [document.scrollingElement.scrollWidth, window.innerWidth]"


def axe_source() -> str:
    if not AXE.exists():
        pytest.fail(
            f"axe-core is missing ({AXE.relative_to(settings.BASE_DIR)}): run `npm ci` at the "
            "repository root, or `make test`, which runs it when node_modules/axe-core is missing"
        )
    return AXE.read_text()


@dataclass
class Finding:
    """What one page showed: axe violations by impact, its width, its console errors."""

    label: str
    violations: list[dict]
    width: tuple[int, int]
    console: list[str]

    def counts(self) -> dict[str, int]:
        return {impact: sum(v["impact"] == impact for v in self.violations) for impact in IMPACTS}

    def summary(self) -> str:
        counts = " ".join(f"{n:>2}" for n in self.counts().values())
        lines = [f"{self.label:<60} {counts}  {self.width[0]:>4} px"]
        lines += [
            f"    {v['impact']} {v['id']}: {', '.join(v['targets'])}" for v in self.violations
        ]
        return "\n".join(lines)

    def problems(self) -> list[str]:
        found = [
            f"{v['impact']} {v['id']} ({v['help']}): {', '.join(v['targets'])}"
            for v in self.violations
            if v["impact"] in FAILING
        ]
        scroll, viewport = self.width
        if scroll > viewport:
            found.append(f"scrolls sideways: {scroll} px wide in a {viewport} px viewport")
        found += [f"console: {message}" for message in self.console]
        return found


@dataclass
class Auditor:
    """Listens to one page's console and audits it after each visit."""

    page: object
    console: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.page.add_init_script(script=axe_source())
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.console.append((f"uncaught {error}", "")))

    def _on_console(self, message):
        if message.type == "error":
            self.console.append((message.text, message.location.get("url", "")))

    def audit(self, label: str, *, status: int = 200) -> Finding:
        """axe, width and console of the page as it is now; ``status`` is the one the
        document answered with, whose own 'Failed to load resource' is expected."""
        logged, self.console = self.console, []
        expected = f"status of {status}" if status != 200 else None
        console = [
            f"{text} ({where})"
            for text, where in logged
            if not (expected and expected in text and where == self.page.url)
        ]
        return Finding(
            label=label,
            violations=self.page.evaluate(RUN_AXE),
            width=tuple(self.page.evaluate(SCROLL_WIDTH)),
            console=console,
        )
