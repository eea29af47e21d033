"""The sets of collections of one index: which is live, which are being built, which wait to be dropped.

``live/<index>`` holds the live set's suffix and its committed state; a set being built keeps its state in
``build/<set>`` until ``publish`` flips the live row to it. The set it replaces is listed in the live row's
``retired_sets`` with the time it was retired, and released and dropped only after the grace, so replicas
still searching it notice (``superseded``) and reopen first; ``discard_stale`` drops what a crash left.
"""

from __future__ import annotations

import time
from typing import Any

from search.backends.milvus import terms
from search.backends.milvus.control import Control
from search.backends.milvus.lease import Lease
from search.backends.milvus.schema import CollectionSet, drop_set, release_set


def live_key(base: str) -> str:
    return f"live/{base}"


def build_key(names: CollectionSet) -> str:
    return f"build/{names.name}"


def build_scope(base: str) -> str:
    return f"build/{base}"


def put_live(control: Control, lease: Lease | None, base: str, state: dict[str, Any]) -> None:
    """Write the live row, and keep the holder's copy (what ``open`` reads under the lease) in step."""
    control.put(live_key(base), state, "live")
    if lease is not None:
        lease.state = state


def discard(client: Any, control: Control, lease: Lease | None, base: str, live: dict[str, Any] | None, grace_s: float) -> None:
    """Drop every set of ``base`` but the live one: unpublished builds, and retired ones past their grace."""
    retired = {suffix: at for suffix, at in (live or {}).get("retired_sets", [])}
    kept = {}
    for names in CollectionSet.all_of(client, base):
        if live is not None and names.suffix == live["suffix"]:
            continue
        if retired.get(names.suffix, 0.0) + grace_s > time.time():
            kept[names.suffix] = retired[names.suffix]
            continue
        drop(client, control, names)
    if live is not None and kept != retired:
        put_live(control, lease, base, live | {"retired_sets": sorted(kept.items())})


def retire(
    client: Any, control: Control, lease: Lease | None, names: CollectionSet, state: dict[str, Any], grace_s: float
) -> dict[str, Any]:
    """After ``names`` became live with ``state``: wait out the grace, release and drop the set it replaced (the
    last of ``retired_sets``), and return the live state without it."""
    suffix, _ = state["retired_sets"][-1]
    time.sleep(grace_s)
    old = CollectionSet(names.base, suffix)
    release_set(client, old)
    drop(client, control, old)
    state = state | {"retired_sets": [entry for entry in state["retired_sets"] if entry[0] != suffix]}
    put_live(control, lease, names.base, state)
    return state


def drop(client: Any, control: Control, names: CollectionSet) -> None:
    """A set's collections, its build row and its term statistics."""
    drop_set(client, names)
    control.delete(build_key(names))
    control.delete_scope(terms.scope(names.name))
