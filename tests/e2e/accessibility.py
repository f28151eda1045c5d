"""axe-core in the page under test: WCAG 2.1 AA rules, zero violations expected.

axe-core comes from node_modules (package.json, `npm ci` in make install), never from a
CDN; it is added to the page by the test only (pages open with bypass_csp).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playwright.async_api import Page

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Each rule the page breaks now: id, impact and the offending nodes' selectors."""
    assert AXE.is_file(), f"{AXE} missing: run make install (npm ci installs axe-core)"
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = await page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, { runOnly: { type: "tag", values: tags } });
            return result.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map((n) => n.target.join(" ")),
            }));
        }""",
        WCAG_21_AA,
    )
    return found


async def assert_accessible(page: Page, view: str) -> None:
    violations = await axe_violations(page)
    assert violations == [], f"{view}: " + json.dumps(violations, ensure_ascii=False, indent=1)
