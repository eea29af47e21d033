"""Real sentences beyond the benchmark's basis: the docstrings of installed Python code.

The basis of ``benchmarks.vectors`` (the seeds and Cranfield, about 10,000 sentences) cannot show how
IVF behaves on real embeddings at 100,000 and more; the docstrings of the standard library and of the
installed packages hold about 290,000 distinct English sentences on many topics. The split is crude
(paragraphs, then sentence ends before a capital; doctests and tables skipped): the sentences are only
embedded and searched against each other.

``python -m benchmarks.docstrings [--sample N] ROOT... > sentences.txt`` writes them (or a seeded random
sample of N), one a line, sorted, for ``semsearch bench vectors --sentences``.
"""

from __future__ import annotations

import argparse
import ast
import random
import re
import sys
from collections.abc import Iterator
from pathlib import Path

_PARAGRAPH = re.compile(r"\n\s*\n")
_NOT_PROSE = re.compile(r">>>|^\s*[-=]{3,}|::")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_WORDS = (4, 60)
_LETTER_SHARE = 0.6
_SAMPLE_SEED = 20261202


def docstring_sentences(roots: list[Path]) -> list[str]:
    """The distinct prose sentences of every docstring under ``roots`` (test folders left out), sorted."""
    found: set[str] = set()
    for root in roots:
        for path in root.rglob("*.py"):
            if "/test" not in str(path):
                found.update(_sentences(path))
    return sorted(found)


def seeded_order(sentences: list[str]) -> list[str]:
    """``sentences`` in a random order that is the same for the same sentences on any machine."""
    ordered = sorted(sentences)
    random.Random(_SAMPLE_SEED).shuffle(ordered)
    return ordered


def sample(sentences: list[str], count: int) -> list[str]:
    """``count`` of ``sentences``, the same ones for the same input on any machine, sorted."""
    return sorted(seeded_order(sentences)[:count])


def _sentences(path: Path) -> Iterator[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
        return
    for node in ast.walk(tree):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for paragraph in _PARAGRAPH.split(ast.get_docstring(node) or ""):
            if _NOT_PROSE.search(paragraph):
                continue
            for sentence in _SENTENCE_END.split(" ".join(paragraph.split())):
                words = len(sentence.split())
                if _WORDS[0] <= words <= _WORDS[1] and sum(c.isalpha() for c in sentence) > _LETTER_SHARE * len(sentence):
                    yield sentence


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Docstring sentences of the Python files under each root, one a line.")
    parser.add_argument("--sample", type=int, help="a seeded random sample of this many")
    parser.add_argument("roots", nargs="+", type=Path)
    arguments = parser.parse_args()
    found = docstring_sentences(arguments.roots)
    sys.stdout.write("".join(f"{sentence}\n" for sentence in (sample(found, arguments.sample) if arguments.sample else found)))
