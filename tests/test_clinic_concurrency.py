"""Two treatment rooms writing at once: two real processes, SQLite and PostgreSQL, nothing
lost (notes, questionnaires, session index rows, and hierarchy versions numbered without a
gap or a duplicate)."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime
from typing import Any

from vrexposure.clinic import IndexedSession, open_store

from .clinic_support import db_url, postgres_server  # noqa: F401  (fixtures)

WRITES_PER_ROOM = 25


def room(url: str, name: str, start: Any, done: Any) -> None:
    """One treatment room: after the common start signal, interleave every kind of write."""
    store = open_store(url)
    start.wait(30)
    try:
        # A tight burst first: both rooms numbering new hierarchy versions at the same time.
        for i in range(WRITES_PER_ROOM):
            store.save_hierarchy("P017", f"id: h\n# {name} burst {i}\n", "h",
                                 f"{name} burst {i}")
        for i in range(WRITES_PER_ROOM):
            store.add_note("P017", f"{name} note {i}")
            store.save_hierarchy("P017", f"id: h\n# {name} {i}\n", "h", f"{name} {i}")
            store.index_session(IndexedSession(
                session_id=f"{name}-{i}", patient_id="P017",
                recording_path=f"/clinic/{name}/P017_{i}.xdf", sha256="0" * 64,
                started_utc=f"2026-11-{1 + i % 28:02d}T10:00:00+00:00", hierarchy_id="h",
                hierarchy_version=None, duration_s=60.0, highest_step=1 + i % 10, stops=i % 2,
                alerts=0, steps=[{"step": 1, "suds_peak": 50, "suds_end": 20}]))
            store.add_questionnaire("P017", "FSQ", datetime.now(UTC), {"total": i, "room": name})
            # A patient of this room only, added while the other room writes too.
            store.add_patient(f"R{name[-1].upper()}{i:03d}")  # RA000, RB007: P017-style ids
        done.put(name)
    finally:
        store.close()


def test_two_rooms_writing_at_once_lose_nothing(db_url: str) -> None:  # noqa: F811
    with open_store(db_url, migrate=True) as store:
        store.add_patient("P017")
    context = multiprocessing.get_context("spawn")
    start, done = context.Event(), context.Queue()
    rooms = [context.Process(target=room, args=(db_url, name, start, done))
             for name in ("roomA", "roomB")]
    for process in rooms:
        process.start()
    start.set()
    for process in rooms:
        process.join(120)
        assert process.exitcode == 0, f"{process.name} failed (exit {process.exitcode})"
    assert sorted(done.get(timeout=5) for _ in rooms) == ["roomA", "roomB"]

    with open_store(db_url) as store:
        expected = {f"{r} note {i}" for r in ("roomA", "roomB") for i in range(WRITES_PER_ROOM)}
        assert {n.text for n in store.notes("P017")} == expected
        assert len(store.notes("P017")) == 2 * WRITES_PER_ROOM
        versions = store.hierarchy_versions("P017")
        assert [v.version for v in versions] == list(range(1, 4 * WRITES_PER_ROOM + 1))
        assert {v.comment for v in versions} == {
            f"{r}{kind} {i}" for r in ("roomA", "roomB") for kind in ("", " burst")
            for i in range(WRITES_PER_ROOM)}
        assert {s.session_id for s in store.sessions("P017")} == {
            f"{r}-{i}" for r in ("roomA", "roomB") for i in range(WRITES_PER_ROOM)}
        scores = [(q.scores["room"], q.scores["total"]) for q in store.questionnaires("P017")]
        assert sorted(scores) == sorted(
            (r, i) for r in ("roomA", "roomB") for i in range(WRITES_PER_ROOM))
        assert len(store.patients()) == 1 + 2 * WRITES_PER_ROOM
