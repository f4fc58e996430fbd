"""The Python snippets of the README and the user docs run as written.

Every ```python block of a page runs in one namespace per page, in page order (a later block
may use what an earlier one defined, as a reader would), in a temporary working folder. A
block preceded by ``<!-- snippet: not run (reason) -->`` is skipped: signatures, training runs,
and blocks that need the CIFAR-10 files or the internet. Those are listed here with their
reasons, so a new block runs unless someone says why it cannot.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("README.md", "docs/usage.md", "docs/models.md", "docs/system.md", "docs/data.md")
_BLOCK = re.compile(r"```python\n(.*?)```", re.S)
_SKIP = re.compile(r"<!-- snippet: not run \(([^)]+)\) -->\s*$")


def snippets(page: str) -> list[tuple[int, str, str | None]]:
    """(line number, code, reason to skip or None) of every Python block of ``page``."""
    text = (ROOT / page).read_text(encoding="utf-8")
    out = []
    for match in _BLOCK.finditer(text):
        before = text[:match.start()].rstrip("\n")
        skip = _SKIP.search(before.rsplit("\n", 1)[-1])
        line = text.count("\n", 0, match.start()) + 2
        out.append((line, match.group(1), skip.group(1) if skip else None))
    return out


def test_every_page_has_runnable_snippets_and_skips_name_a_reason():
    for page in PAGES:
        blocks = snippets(page)
        assert blocks, page
        for line, _, reason in blocks:
            assert reason is None or len(reason.strip()) >= 8, (page, line, reason)
    assert any(reason is None for page in PAGES for _, _, reason in snippets(page))


@pytest.mark.parametrize("page", PAGES)
def test_snippets_run(page, tmp_path, monkeypatch, one_torch_thread):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__snippet__"}
    ran = 0
    for line, code, reason in snippets(page):
        if reason is not None:
            continue
        try:
            exec(compile(code, f"{page}:{line}", "exec"), namespace)
        except Exception as err:  # name the block, keep the traceback
            raise AssertionError(f"{page}, the block at line {line} fails: {err!r}") from err
        ran += 1
    assert ran > 0 or all(reason for _, _, reason in snippets(page)), page
