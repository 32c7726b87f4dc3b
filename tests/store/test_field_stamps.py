"""Field stamps are stored compactly (those equal to the record's stamp are implied) and
read back exactly as written, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import replace

from neonpay.store import Record, Store

from .records import PEER, by_version, put, remote

OLD = "001700000000000.000001.peer-b"


def _states() -> list[Record]:
    base = remote("payment_stage", "plain", {"title": "T", "price": 5}, {PEER: 1})
    hlc = base.hlc
    return [
        base,  # every field written with the record
        replace(base, key="mixed", field_hlcs={"price": hlc, "title": OLD}),
        replace(base, key="removed", field_hlcs={"gone": hlc, "price": hlc, "title": hlc}),
        replace(base, key="unstamped", field_hlcs={"price": hlc}),  # title has no stamp
        replace(base, key="tomb", fields={}, deleted=True, field_hlcs={"price": hlc, "title": OLD}),
    ]


def test_field_stamps_read_back_exactly(store: Store) -> None:
    states = _states()
    store.apply_batch(states, by_version)
    for state in states:
        got = store.get("payment_stage", state.key, include_deleted=True)
        assert got is not None
        assert got.field_hlcs == state.field_hlcs, state.key
        assert list(got.field_hlcs) == sorted(got.field_hlcs)
    fed = {r.key: r.field_hlcs for r in store.feed(0, 100).records}
    assert fed == {s.key: s.field_hlcs for s in states}
    logged = {r.key: r.field_hlcs for r in store.changes(0, 100)}
    assert logged == {s.key: s.field_hlcs for s in states}


def test_a_local_write_keeps_its_stamps(store: Store) -> None:
    first = put(store, "payment_stage", "s1", {"title": "A", "price": 1})
    second = put(store, "payment_stage", "s1", {"title": "B", "price": 1})
    assert first is not None
    assert second is not None
    got = store.get("payment_stage", "s1")
    assert got is not None
    assert got.field_hlcs == {"price": first.hlc, "title": second.hlc}


def test_rows_with_the_whole_map_are_read_as_they_are(store: Store) -> None:
    state = _states()[1]
    store.apply_batch([state], by_version)
    with store._transaction(write=True) as s:  # type: ignore[attr-defined]
        s.execute(
            "UPDATE neonpay_records SET field_hlcs = ? WHERE key = ?",
            (json.dumps({"price": state.hlc, "title": OLD}), "mixed"),
        )
    got = store.get("payment_stage", "mixed")
    assert got is not None
    assert got.field_hlcs == {"price": state.hlc, "title": OLD}
