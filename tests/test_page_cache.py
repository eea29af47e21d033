"""Reading a local index into the page cache before serving: every byte once, and nothing when it would not
fit. (That the reading leaves SQLite's locks alone is ``test_index_job``'s search during an index job.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from search.backends.local import page_cache


def _folder(tmp_path: Path) -> tuple[Path, int]:
    folder = tmp_path / "index"
    (folder / "keyword").mkdir(parents=True)
    sizes = {"seg-a.faiss": 3 * (8 << 20) + 17, "vec-b.npy": 1000, "store.sqlite": 0, "keyword/meta.json": 12}
    for name, size in sizes.items():
        (folder / name).write_bytes(b"x" * size)
    return folder, sum(sizes.values())


def test_every_file_is_read_once(tmp_path: Path) -> None:
    folder, total = _folder(tmp_path)
    assert page_cache.read_into_page_cache(folder) == total


def test_an_index_over_half_the_available_memory_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, total = _folder(tmp_path)
    monkeypatch.setattr(page_cache, "_available_bytes", lambda: 2 * total - 2)
    assert page_cache.read_into_page_cache(folder) == 0
    monkeypatch.setattr(page_cache, "_available_bytes", lambda: 2 * total)
    assert page_cache.read_into_page_cache(folder) == total
