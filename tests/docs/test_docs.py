"""The documentation holds together: every relative link in README.md and docs/**/*.md reaches a
file (and a heading, for a ``#anchor``), every docs page is at most two clicks from the README,
the README stays a newcomer's page (at most 250 lines, no commit hashes), and the package map
of docs/architecture.md names every module.

Links are Markdown inline links and images, ``[text](target)`` / ``![alt](target)``, outside code
(fenced blocks and inline code spans). Anchors follow GitHub's heading slugs.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Collection
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 250

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:, …
# a 40-hex commit id, or a shorter run of hex digits with letters and digits both (an
# abbreviated one: 2d76371, 84966b7 …)
FULL_HASH = re.compile(r"\b[0-9a-f]{40}\b")
SHORT_HASH = re.compile(r"\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,39}\b")


# --------------------------------------------------------------------------- helpers


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code spans blanked."""
    lines: list[str] = []
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            lines.append("")
            continue
        lines.append("" if fenced else INLINE_CODE.sub("", line))
    return lines


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every inline link and image in a Markdown file."""
    found: list[tuple[int, str]] = []
    for number, line in enumerate(prose_lines(path.read_text(encoding="utf-8")), 1):
        found.extend((number, m.group(1)) for m in LINK.finditer(line))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text without Markdown, lower case, punctuation
    dropped, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # [text](url) -> text
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file; repeated headings get -1, -2 … as on GitHub."""
    seen: dict[str, int] = {}
    result = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        m = None if fenced else HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        result.add(base if n == 0 else f"{base}-{n}")
    return result


def resolve(source: Path, target: str) -> tuple[Path, str]:
    """The file (or folder) and the anchor a relative link points at."""
    ref, _, anchor = target.partition("#")
    page = source if ref == "" else (source.parent / ref).resolve()
    return page, anchor


def broken_links(path: Path, pending: Collection[Path] = ()) -> list[str]:
    """What is wrong with the relative links of one Markdown file, one line per link."""
    problems = []
    for number, target in links(path):
        if EXTERNAL.match(target):
            continue
        where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{number}"
        page, anchor = resolve(path, target)
        if not page.exists():
            if page not in pending:
                problems.append(f"{where}: {target} -> no such file {page}")
            continue
        if anchor:
            if page.is_dir() or page.suffix != ".md":
                problems.append(f"{where}: {target} -> an anchor into a file that is not Markdown")
            elif anchor not in anchors(page):
                problems.append(f"{where}: {target} -> {page.name} has no heading #{anchor}")
    return problems


def clicks_from(start: Path) -> dict[Path, int]:
    """Each Markdown page under the repository reachable from ``start``, with the fewest
    clicks it takes."""
    depth = {start.resolve(): 0}
    queue = deque([start.resolve()])
    while queue:
        page = queue.popleft()
        for _, target in links(page):
            if EXTERNAL.match(target):
                continue
            nxt, _ = resolve(page, target)
            if nxt.suffix == ".md" and nxt.is_file() and nxt not in depth:
                depth[nxt] = depth[page] + 1
                queue.append(nxt)
    return depth


def doc_pages() -> list[Path]:
    return sorted(p.resolve() for p in DOCS.rglob("*.md"))


# --------------------------------------------------------------------------- the repository


def test_every_relative_link_resolves() -> None:
    problems = []
    for path in [README, *doc_pages()]:
        problems.extend(broken_links(path))
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_every_docs_page_is_at_most_two_clicks_from_the_readme() -> None:
    depth = clicks_from(README)
    far = [
        f"{p.relative_to(ROOT)}: {depth[p]} clicks"
        if p in depth
        else f"{p.relative_to(ROOT)}: not reachable"
        for p in doc_pages()
        if depth.get(p, 99) > 2
    ]
    assert not far, "docs pages more than two clicks from README.md:\n" + "\n".join(far)
    assert depth.get((DOCS / "index.md").resolve()) == 1, "README.md should link docs/index.md"


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move the detail into docs/"
    )


def test_readme_names_no_commit() -> None:
    text = README.read_text(encoding="utf-8")
    hashes = FULL_HASH.findall(text) + SHORT_HASH.findall(text)
    assert not hashes, f"commit hashes in README.md (history belongs in the CHANGELOG): {hashes}"


def test_the_package_map_names_every_module() -> None:
    """docs/architecture.md's map of the package: every module, in its folder, and no other."""
    listed = package_map((DOCS / "architecture.md").read_text(encoding="utf-8"))
    package = ROOT / "stream_trf"
    actual = {
        str(p.relative_to(ROOT))
        for p in package.rglob("*.py")
        if p.name != "__main__.py" and not (p.name == "__init__.py" and p.parent != package)
    }
    assert sorted(actual - listed) == [], "modules missing from docs/architecture.md"
    assert sorted(listed - actual) == [], "docs/architecture.md names modules that do not exist"


def package_map(text: str) -> set[str]:
    """The module paths of the architecture page's package map (its "The package" code block,
    a folder per ``name/`` line, two spaces of indent per level)."""
    block = text[text.index("## The package") :].split("```")[1]
    listed: set[str] = set()
    folders: list[str] = []
    for line in block.splitlines():
        m = re.match(r"^( *)(\S+)", line)
        if not m or not m.group(2).endswith(("/", ".py")):
            continue
        folders = folders[: len(m.group(1)) // 2]
        if m.group(2).endswith("/"):
            folders.append(m.group(2).rstrip("/"))
        else:
            listed.add("/".join([*folders, m.group(2)]))
    return listed


# --------------------------------------------------------------------------- the checker itself


def test_checker_finds_a_missing_file_a_missing_anchor_and_ignores_code(tmp_path: Path) -> None:
    (tmp_path / "b.md").write_text("# B\n\n## Two words, `code`!\n\n## Two words, code\n")
    page = tmp_path / "a.md"
    page.write_text(
        "[ok](b.md) [ok](b.md#two-words-code) [ok](b.md#two-words-code-1) [web](https://x.org/y)\n"
        "[gone](c.md) ![img](pic.png) [bad anchor](b.md#three) [self](#nowhere)\n"
        "`[in code](nope.md)`\n"
        "```\n[fenced](nope.md)\n```\n"
    )
    problems = broken_links(page)
    assert len(problems) == 4, problems
    assert any("c.md" in p for p in problems)
    assert any("pic.png" in p for p in problems)
    assert any("#three" in p for p in problems)
    assert any("#nowhere" in p for p in problems)
    assert not any("nope.md" in p for p in problems)
    assert broken_links(page, {(tmp_path / "c.md").resolve(), (tmp_path / "pic.png").resolve()})
    assert len(broken_links(page, {(tmp_path / "c.md").resolve()})) == 3


def test_checker_counts_clicks(tmp_path: Path) -> None:
    (tmp_path / "start.md").write_text("[one](one.md)\n")
    (tmp_path / "one.md").write_text("[two](sub/two.md) [back](start.md)\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "two.md").write_text("[three](../three.md)\n")
    (tmp_path / "three.md").write_text("end\n")
    (tmp_path / "island.md").write_text("nobody links here\n")
    depth = {p.name: d for p, d in clicks_from(tmp_path / "start.md").items()}
    assert depth == {"start.md": 0, "one.md": 1, "two.md": 2, "three.md": 3}


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Settings of `trf_tok2vec`", "settings-of-trf_tok2vec"),
        ("`stream-trf train`, `evaluate`, `package`", "stream-trf-train-evaluate-package"),
        ("/metrics", "metrics"),
        (
            "Fine-tuning: the defaults and what they reach",
            "fine-tuning-the-defaults-and-what-they-reach",
        ),
        ("StreamTrfConsumerLagGrowing", "streamtrfconsumerlaggrowing"),
        ("A [link](x.md) in a heading", "a-link-in-a-heading"),
    ],
)
def test_slug_follows_github(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_hash_patterns() -> None:
    assert SHORT_HASH.findall("on 2d76371, bf16 and fp32, 84966b7.") == ["2d76371", "84966b7"]
    assert FULL_HASH.findall("commit " + "a1" * 20) == ["a1" * 20]
    assert not SHORT_HASH.findall("1,000,000 wordpieces; cafebabe; 20261128")
