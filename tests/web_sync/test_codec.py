"""The strict wire codec and bounded inflating (pure functions)."""

from __future__ import annotations

import copy
import gzip
import time
import tracemalloc
from typing import Any

import pytest

from neonpay.store.base import Outcome, Record
from neonpay.sync.protocol import ChangesPage, ItemResult, PeerInfo, PushResult
from neonpay.web_sync import codec
from neonpay.web_sync.compression import accepts_gzip, content_encoding, inflate
from neonpay.web_sync.errors import WireError
from neonpay.web_sync.limits import Limits

from .helpers import gzip_bomb

STAMP = "001700000000000.000000.node-a"


def wire_record(**changes: Any) -> dict[str, Any]:
    record = {
        "kind": "payment_stage",
        "key": "premium",
        "fields": {"title": "Premium", "price": 50},
        "version": {"node-a": 3, "node-b": 1},
        "hlc": STAMP,
        "field_hlcs": {"price": STAMP, "title": STAMP},
        "deleted": False,
        "origin": "node-a",
        "updated_at": 1_700_000_000.5,
        "resolution": False,
    }
    record.update(changes)
    return record


def test_a_record_round_trips() -> None:
    record = codec.record_from_wire(wire_record())
    assert record.to_wire() == wire_record()
    again = codec.record_from_wire(codec.load(codec.dump(record.to_wire())))
    assert again == record


EARLIER = "001699999999999.000003.node-b"


def test_field_stamps_equal_to_the_record_stamp_are_left_out_on_the_wire() -> None:
    record = codec.record_from_wire(
        wire_record(
            fields={"title": "Premium", "price": 50, "label": "Pay"},
            field_hlcs={"label": STAMP, "price": STAMP, "title": EARLIER, "gone": STAMP},
        )
    )
    wire = codec.record_to_wire(record)
    # title differs; gone (a removed field) is not in fields: both stay; the rest is implied
    assert wire["field_hlcs"] == {"gone": STAMP, "title": EARLIER}
    again = codec.record_from_wire(codec.load(codec.dump(wire)))
    assert again == record
    assert again.field_hlcs == {"gone": STAMP, "label": STAMP, "price": STAMP, "title": EARLIER}
    assert list(again.field_hlcs) == sorted(again.field_hlcs)


def test_a_tombstone_keeps_every_field_stamp_on_the_wire() -> None:
    record = codec.record_from_wire(wire_record(deleted=True, fields={}))
    wire = codec.record_to_wire(record)
    assert wire["field_hlcs"] == {"price": STAMP, "title": STAMP}
    assert codec.record_from_wire(wire) == record


def test_the_compact_form_is_what_pages_pushes_and_results_carry() -> None:
    record = codec.record_from_wire(wire_record())
    body = codec.load(codec.push_body([record]))
    assert body["records"][0]["field_hlcs"] == {}
    assert codec.records_from_wire(body) == [record]
    page = codec.page_to_wire(ChangesPage("node-a", [record], 1, False))
    assert page["changes"][0]["field_hlcs"] == {}
    assert codec.page_from_wire(page).records == [record]
    answer = codec.push_result_to_wire(
        PushResult("node-b", [ItemResult("payment_stage", "premium", Outcome.CONFLICT, "", record)])
    )
    assert answer["results"][0]["current"]["field_hlcs"] == {}
    result = codec.push_result_from_wire(answer, [record])
    assert result.results[0].current == record


def test_the_full_form_is_still_read() -> None:
    full = wire_record()
    assert codec.record_from_wire(full) == codec.record_from_wire(wire_record(field_hlcs={}))


def test_optional_keys_may_be_left_out() -> None:
    data = wire_record()
    for name in ("origin", "updated_at", "resolution"):
        del data[name]
    record = codec.record_from_wire(data)
    assert (record.origin, record.updated_at, record.resolution) == ("", 0.0, False)


BAD_RECORDS: list[tuple[str, Any, str]] = [
    ("not an object", [], "bad_schema"),
    ("missing version", {k: v for k, v in wire_record().items() if k != "version"}, "bad_schema"),
    ("internal seq", wire_record(seq=5), "bad_schema"),
    ("internal received_from", wire_record(received_from="node-a"), "bad_schema"),
    ("unknown kind", wire_record(kind="analytics"), "unknown_kind"),
    ("kind not a string", wire_record(kind=3), "unknown_kind"),
    ("empty key", wire_record(key=""), "bad_schema"),
    ("long key", wire_record(key="k" * 257), "bad_schema"),
    ("control character in key", wire_record(key="a\nb"), "bad_schema"),
    ("fields not an object", wire_record(fields=["x"]), "bad_schema"),
    ("too many fields", wire_record(fields={f"f{i}": i for i in range(1001)}), "record_too_large"),
    ("fields too large", wire_record(fields={"t": "x" * (4 * 1024 * 1024)}), "record_too_large"),
    ("empty version", wire_record(version={}), "bad_schema"),
    ("negative counter", wire_record(version={"node-a": -1}), "bad_schema"),
    ("bool counter", wire_record(version={"node-a": True}), "bad_schema"),
    ("float counter", wire_record(version={"node-a": 1.5}), "bad_schema"),
    ("string counter", wire_record(version={"node-a": "1"}), "bad_schema"),
    ("huge counter", wire_record(version={"node-a": 2**63}), "bad_schema"),
    ("counter past the ceiling", wire_record(version={"node-a": 2**53}), "bad_schema"),
    ("bad node id", wire_record(version={"node a": 1}), "bad_schema"),
    (
        "too many nodes",
        wire_record(version={f"n{i}": 1 for i in range(1001)}),
        "record_too_large",
    ),
    ("bad hlc", wire_record(hlc="yesterday"), "bad_schema"),
    ("hlc with spaces", wire_record(hlc=" 01700000000000.000000.node-a"), "bad_schema"),
    ("hlc not a string", wire_record(hlc=17), "bad_schema"),
    ("hlc far ahead", wire_record(hlc="099999999999999.000000.node-a"), "clock_ahead"),
    ("bad field stamp", wire_record(field_hlcs={"price": "x"}), "bad_schema"),
    ("field stamp not a string", wire_record(field_hlcs={"price": 5}), "bad_schema"),
    (
        "field stamp far ahead",
        wire_record(field_hlcs={"price": "099999999999999.000000.node-a"}),
        "clock_ahead",
    ),
    ("empty field name", wire_record(field_hlcs={"": STAMP}), "bad_schema"),
    ("deleted not bool", wire_record(deleted=0), "bad_schema"),
    ("tombstone with fields", wire_record(deleted=True), "bad_schema"),
    ("bad origin", wire_record(origin="no spaces allowed"), "bad_schema"),
    ("negative updated_at", wire_record(updated_at=-1), "bad_schema"),
    ("string updated_at", wire_record(updated_at="now"), "bad_schema"),
    ("resolution not bool", wire_record(resolution="yes"), "bad_schema"),
]


@pytest.mark.parametrize(
    ("value", "code"), [c[1:] for c in BAD_RECORDS], ids=[c[0] for c in BAD_RECORDS]
)
def test_bad_records_are_refused(value: Any, code: str) -> None:
    with pytest.raises(WireError) as caught:
        codec.record_from_wire(value, "records[0]", now=time.time())
    assert caught.value.code == code
    assert caught.value.status == (413 if code == "batch_too_large" else 422)
    assert "records[0]" in str(caught.value) or code == "unknown_kind"


def test_kinds_restrict_what_is_accepted() -> None:
    with pytest.raises(WireError) as caught:
        codec.record_from_wire(wire_record(), kinds=("template",))
    assert caught.value.code == "wrong_kind"


def test_batches_are_bounded() -> None:
    body = {"records": [wire_record(key=f"k{i}") for i in range(11)]}
    with pytest.raises(WireError) as caught:
        codec.records_from_wire(body, limits=Limits(max_batch=10))
    assert (caught.value.status, caught.value.code) == (413, "batch_too_large")
    assert len(codec.records_from_wire(body, limits=Limits(max_batch=11))) == 11
    bad_bodies: list[Any] = [{}, {"records": {}}, {"records": [], "more": 1}, []]
    for bad in bad_bodies:
        with pytest.raises(WireError):
            codec.records_from_wire(bad)


@pytest.mark.parametrize(
    "body", [b"", b"{", b"[1,]", b"\xff\xfe", b"NaN", b"[" * 5000 + b"]" * 5000]
)
def test_malformed_json(body: bytes) -> None:
    with pytest.raises(WireError) as caught:
        codec.load(body)
    assert (caught.value.status, caught.value.code) == (400, "malformed_json")


def test_pages_results_and_info_round_trip() -> None:
    record = codec.record_from_wire(wire_record())
    page = ChangesPage("node-a", [record], 7, True)
    assert codec.page_from_wire(codec.load(codec.dump(codec.page_to_wire(page)))) == page
    current = codec.record_from_wire(wire_record(version={"node-c": 1}))
    result = PushResult(
        "node-a",
        [
            ItemResult("payment_stage", "premium", Outcome.CONFLICT, current=current),
            ItemResult("payment_stage", "cheap", Outcome.REJECTED, reason="price too low"),
        ],
    )
    sent = [record, codec.record_from_wire(wire_record(key="cheap"))]
    wire = codec.load(codec.dump(codec.push_result_to_wire(result)))
    assert codec.push_result_from_wire(wire, sent) == result
    info = PeerInfo("node-a", 12, 1, "neonpay/3")
    assert codec.peer_info_from_wire(codec.peer_info_to_wire(info)) == info


def test_results_must_answer_what_was_sent() -> None:
    record = codec.record_from_wire(wire_record())
    good = {
        "node_id": "node-a",
        "results": [{"kind": "payment_stage", "key": "premium", "outcome": "applied"}],
    }
    codec.push_result_from_wire(good, [record])
    bad_answers = [
        {"node_id": "node-a", "results": []},
        {"node_id": "node-a", "results": [{**good["results"][0], "key": "other"}]},  # type: ignore[dict-item]
        {"node_id": "node-a", "results": [{**good["results"][0], "outcome": "maybe"}]},  # type: ignore[dict-item]
        {"node_id": "node a", "results": good["results"]},
    ]
    for answer in bad_answers:
        with pytest.raises(WireError):
            codec.push_result_from_wire(copy.deepcopy(answer), [record])


def test_pages_refuse_records_of_kinds_not_asked_for() -> None:
    page = {"node_id": "node-a", "changes": [wire_record()], "next_cursor": 1, "has_more": False}
    with pytest.raises(WireError):
        codec.page_from_wire(page, kinds=("template",))


# --- compression -------------------------------------------------------------------------------
def test_inflate_round_trips_and_checks_identity_size() -> None:
    data = b"x" * 10_000
    assert inflate(gzip.compress(data), "gzip", 10_000) == data
    assert inflate(data, "identity", 10_000) == data
    with pytest.raises(WireError) as caught:
        inflate(data, "identity", 9_999)
    assert caught.value.code == "inflated_too_large"


def test_a_gzip_bomb_is_cut_off_while_inflating() -> None:
    bomb = gzip_bomb(1 << 30)  # 1 GiB of zeros in about 1 MiB
    assert len(bomb) < 2 * 1024 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(WireError) as caught:
            inflate(bomb, "gzip", 4 * 1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (caught.value.status, caught.value.code) == (413, "inflated_too_large")
    assert peak < 16 * 1024 * 1024  # bounded by the limit, not by the 1 GiB


@pytest.mark.parametrize(
    "body",
    [
        b"",
        gzip.compress(b"x" * 1000)[:-12],
        gzip.compress(b"{}") + b"trailing",
        b"\x1f\x8b\x08\x00garbage garbage garbage",
        b"not gzip at all",
    ],
)
def test_corrupt_gzip_is_a_bad_encoding(body: bytes) -> None:
    with pytest.raises(WireError) as caught:
        inflate(body, "gzip", 1 << 20)
    assert (caught.value.status, caught.value.code) == (400, "bad_encoding")


def test_content_encodings() -> None:
    assert (
        content_encoding(None) == content_encoding("") == content_encoding("identity") == "identity"
    )
    assert content_encoding("GZIP") == content_encoding("x-gzip") == "gzip"
    for name in ("br", "deflate", "zstd", "gzip, gzip"):
        with pytest.raises(WireError) as caught:
            content_encoding(name)
        assert (caught.value.status, caught.value.code) == (415, "unsupported_encoding")


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("deflate, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("br", False),
        ("*", True),
        ("gzip;q=oops", False),
    ],
)
def test_accept_encoding(header: str | None, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted


def test_records_built_only_from_documented_keys() -> None:
    record = codec.record_from_wire(wire_record())
    assert isinstance(record, Record)
    assert record.seq == 0
