"""Review: the state algebra is deterministic. MERGE is symmetric byte for byte, two
nodes exchanging any two states end equal (or meet a conflict), usage counters never go
down, and equal versions with different content (they can arise) heal."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from neonpay import _json
from neonpay.store.base import Outcome, Record
from neonpay.sync.clock import HLC, Order, compare_versions
from neonpay.sync.decide import decide
from neonpay.sync.merge import merge_states

from .records import rec

NODES = ("A", "B", "C")
stamps = st.builds(
    lambda ms, counter, node: HLC(1_700_000_000_000 + ms, counter, node).encode(),
    st.integers(0, 3),
    st.integers(0, 1),
    st.sampled_from(NODES),
)
values = st.one_of(st.integers(0, 3), st.none(), st.text("ab", max_size=2))
names = st.sampled_from(("x", "y", "z"))


@st.composite
def states(draw: st.DrawFn, kind: str = "payment_stage") -> Record:
    hlc = draw(stamps)
    deleted = draw(st.booleans())
    fields = {} if deleted else draw(st.dictionaries(names, values, max_size=3))
    field_hlcs = {k: min(v, hlc) for k, v in draw(st.dictionaries(names, stamps)).items()}
    return Record(
        kind=kind,
        key="k",
        fields=fields,
        version=draw(st.dictionaries(st.sampled_from(NODES), st.integers(1, 3), min_size=1)),
        hlc=hlc,
        field_hlcs=dict(sorted(field_hlcs.items())),
        deleted=deleted,
        origin=hlc.split(".", 2)[2],
        updated_at=draw(st.floats(0, 10)),
        resolution=draw(st.booleans()),
    )


def _rule(kind: str, key: str, fields: Any) -> None:
    if fields.get("x") == 1 and fields.get("y") == 2:  # a cross-field rule of the kind
        raise ValueError("x=1 with y=2 is not allowed")


def _wire(record: Record, *, people: bool = True) -> bytes:
    data = record.to_wire()
    if not people:  # updated_at is for people, not part of what must converge
        data.pop("updated_at")
    return _json.dumps(data)


@settings(max_examples=400, deadline=None)
@given(states(), states())
def test_merge_is_symmetric_byte_for_byte(a: Record, b: Record) -> None:
    assert _wire(merge_states(a, b, _rule)) == _wire(merge_states(b, a, _rule))
    assert _wire(merge_states(a, b)) == _wire(merge_states(b, a))


@settings(max_examples=400, deadline=None)
@given(states(), states())
def test_two_nodes_exchanging_states_end_equal_or_in_conflict(a: Record, b: Record) -> None:
    """Node 1 holds ``a`` and receives ``b``; node 2 the other way round."""
    at_1 = decide(b, a, sender="n2")
    at_2 = decide(a, b, sender="n1")
    assert (at_1.outcome is Outcome.CONFLICT) == (at_2.outcome is Outcome.CONFLICT)
    if at_1.outcome is Outcome.CONFLICT:
        assert compare_versions(a.version, b.version) is Order.CONCURRENT
        return
    one = at_1.state if at_1.outcome is Outcome.APPLIED else a
    two = at_2.state if at_2.outcome is Outcome.APPLIED else b
    assert one is not None
    assert two is not None
    assert _wire(one, people=False) == _wire(two, people=False)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(NODES), st.integers(0, 9), min_size=1),
    st.dictionaries(st.sampled_from(NODES), st.integers(0, 9), min_size=1),
    st.dictionaries(st.sampled_from(NODES), st.integers(1, 3), min_size=1),
    st.dictionaries(st.sampled_from(NODES), st.integers(1, 3), min_size=1),
    stamps,
    stamps,
)
def test_usage_counters_never_go_down(
    mine: dict[str, int],
    theirs: dict[str, int],
    my_version: dict[str, int],
    their_version: dict[str, int],
    my_stamp: str,
    their_stamp: str,
) -> None:
    def usage(counts: dict[str, int], version: dict[str, int], stamp: str) -> Record:
        return Record(
            kind="promo_usage",
            key="SALE",
            fields=counts,
            version=version,
            hlc=stamp,
            field_hlcs=dict.fromkeys(sorted(counts), stamp),
        )

    local = usage(mine, my_version, my_stamp)
    incoming = usage(theirs, their_version, their_stamp)
    outcome = decide(incoming, local, sender="peer")
    assert outcome.outcome is not Outcome.CONFLICT
    after = outcome.state if outcome.outcome is Outcome.APPLIED else local
    assert after is not None
    for node, count in mine.items():
        assert after.fields.get(node, 0) >= count
    if compare_versions(their_version, my_version) is not Order.BEFORE:
        for node, count in theirs.items():
            assert after.fields.get(node, 0) >= count


def test_equal_versions_with_different_content_arise_and_heal() -> None:
    """Three concurrent writes from a common state: A edits x (last), B edits y, C
    deletes. Merged in different orders (MERGE is not associative once a tombstone wins
    whole) they give two states with the same version and different fields; exchanging
    them settles on one of them on both sides."""
    a = rec({"A": 2}, ms=30, node="A", title="A's", field_ms={"description": (0, "A")})
    b = rec({"A": 1, "B": 1}, ms=10, node="B", description="B's", field_ms={"title": (0, "A")})
    c = rec({"A": 1, "C": 1}, ms=20, node="C", deleted=True)
    p = merge_states(merge_states(a, b), c)
    q = merge_states(merge_states(b, c), a)
    assert dict(p.version) == dict(q.version) == {"A": 2, "B": 1, "C": 1}
    assert dict(p.fields) != dict(q.fields)  # B's description survives one path only
    at_p = decide(q, p, sender="q")
    at_q = decide(p, q, sender="p")
    one = at_p.state if at_p.outcome is Outcome.APPLIED else p
    two = at_q.state if at_q.outcome is Outcome.APPLIED else q
    assert one is not None
    assert two is not None
    assert _wire(one, people=False) == _wire(two, people=False)


def test_two_resolutions_settle_on_the_later_stamp_either_way() -> None:
    first = rec({"A": 2, "B": 1}, ms=50, node="A", price=20, resolution=True)
    second = rec({"A": 1, "B": 2}, ms=60, node="B", price=30, resolution=True)
    at_a = decide(second, first, sender="B")
    at_b = decide(first, second, sender="A")
    assert at_a.outcome is Outcome.APPLIED
    assert at_b.outcome is Outcome.APPLIED
    assert at_a.state is not None
    assert at_b.state is not None
    assert _wire(at_a.state, people=False) == _wire(at_b.state, people=False)
    assert at_a.state.fields["price"] == 30
