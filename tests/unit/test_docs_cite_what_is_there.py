"""A reader who follows a citation finds the document: every Markdown file
the README, docs/ or `ledger ... --help` names is in the repository."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from consumers.cli.core import _parser

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# docs/API.md, docker/README.md, or a bare STORY.md (at the top, or in docs/).
CITED = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[A-Z][A-Z_]*\.md)\b")


def cited(text: str) -> set[str]:
    return set(CITED.findall(text))


def found(name: str) -> bool:
    return (ROOT / name).is_file() or ("/" not in name and (ROOT / "docs" / name).is_file())


def every_help(parser: argparse.ArgumentParser) -> str:
    texts = [parser.format_help()]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            texts.extend(every_help(sub) for sub in action.choices.values())
    return "\n".join(texts)


def test_every_document_the_docs_cite_is_in_the_repository():
    missing = {(path.name, name) for path in DOCUMENTS for name in cited(path.read_text(encoding="utf-8"))
               if not found(name)}
    assert missing == set()


def test_every_document_the_help_cites_is_in_the_repository():
    names = cited(every_help(_parser()))
    assert "docs/API.md" in names  # the pattern finds what the help cites
    assert {name for name in names if not found(name)} == set()


def test_the_pattern_finds_a_bare_name_and_a_path():
    assert cited("the sketch in DESIGN.md, docs/KAFKA.md and docker/README.md.") == {
        "DESIGN.md", "docs/KAFKA.md", "docker/README.md"}
