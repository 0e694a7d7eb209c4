"""The docs: the configuration reference is the settings model's, and every relative link
(and #anchor) in README.md, docs/ and dbt_project/README.md resolves."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "settings_reference.py"
DOCS = [REPO / "README.md", REPO / "dbt_project" / "README.md", *sorted(REPO.glob("docs/*.md"))]

FENCE = re.compile(r"^ *```.*?^ *```", re.S | re.M)
CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*$", re.M)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(h) for h in HEADING.findall(FENCE.sub("", path.read_text()))}


def broken_links(path: Path) -> list[str]:
    """The relative links of a Markdown file that name no file, or no heading in it."""
    text = CODE.sub("", FENCE.sub("", path.read_text()))
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        if not resolved.exists():
            broken.append(f"{target}: no {resolved}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.name}")
    return broken


def reference(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False
    )


def test_the_configuration_reference_is_the_settings_models() -> None:
    result = reference("--check")
    assert result.returncode == 0, result.stderr


def test_a_stale_configuration_reference_is_caught(tmp_path: Path) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text((REPO / "docs" / "configuration.md").read_text().replace("`30`", "`31`", 1))
    result = reference("--check", "--out", str(stale))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "make docs" in result.stderr
    assert reference("--out", str(stale)).returncode == 0  # regenerated: current again
    assert reference("--check", "--out", str(stale)).returncode == 0


def test_every_setting_is_in_the_reference() -> None:
    from engagement.settings import Settings

    text = (REPO / "docs" / "configuration.md").read_text()
    for field in Settings.model_fields.values():
        assert f"| `{field.alias}` |" in text


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path) == []


def test_a_broken_link_or_anchor_is_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## In production: `docker-compose.yml`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[ok](other.md#in-production-docker-composeyml) [self](#page)"
        " [web](https://example.com/x.md)\n[gone](missing.md) [bad](other.md#nowhere)\n"
        "`[in code](missing.md)`\n```\n[in a block](missing.md)\n```\n"
    )
    assert broken_links(page) == [
        f"missing.md: no {tmp_path / 'missing.md'}",
        "other.md#nowhere: no heading #nowhere in other.md",
    ]


def test_the_readme_stays_short() -> None:
    assert len((REPO / "README.md").read_text().splitlines()) < 300
