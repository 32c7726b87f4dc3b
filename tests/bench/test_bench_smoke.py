"""The benchmarks must not rot: CI runs the quick suite and checks that it produces sane
figures. Nothing here asserts a timing; only that figures exist and make sense.

This directory has no ``__init__.py`` on purpose: as a package it would be named
``bench`` and hide the real ``bench`` package of the repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.measure import percentile, summarize  # noqa: E402
from bench.proxy import HttpRequestCounter  # noqa: E402

QUICK_TIMEOUT = 300


def _rows(doc: dict[str, Any], bench: str) -> list[dict[str, Any]]:
    return [r for r in doc["results"] if r["bench"] == bench]


def _median(row: dict[str, Any], figure: str) -> float:
    return float(row["figures"][figure]["median"])


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run ``python -m bench --quick`` once for the module; its JSON document."""
    out = tmp_path_factory.mktemp("bench") / "results.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "bench", "--quick", "--output", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=QUICK_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert out.exists(), done.stdout[-2000:]
    document: dict[str, Any] = json.loads(out.read_text())
    return document


def test_quick_run_writes_machine_facts_and_targets(quick_run: dict[str, Any]) -> None:
    machine = quick_run["machine"]
    assert machine["cpu_count"] >= 1
    assert machine["python"].count(".") == 2
    assert machine["sqlite"]
    assert quick_run["settings"]["quick"] is True
    statuses = {t["status"] for t in quick_run["targets"]}
    assert statuses <= {"PASS", "MISS", "N/A"}
    assert len(quick_run["targets"]) >= 10
    failed = [s for s in quick_run["skipped"] if s["reason"].startswith("failed")]
    assert failed == []


def test_floor_and_naive_move_every_record(quick_run: dict[str, Any]) -> None:
    floors = [r for r in _rows(quick_run, "floor") if r["params"].get("n")]
    assert floors
    for row in floors:
        assert _median(row, "time_s") > 0
        if not row["params"].get("direct"):
            # at least the records themselves crossed the wire
            assert _median(row, "bytes_up") > 100 * row["params"]["n"]
    naive = _rows(quick_run, "naive")
    assert {r["params"]["changes"] for r in naive} == {0, 1}
    for row in naive:
        per_stage = _median(row, "bytes_up") / row["params"]["n"]
        assert 150 < per_stage < 400  # a full dump, every time


def test_neonpay_scenarios_produce_sane_figures(quick_run: dict[str, Any]) -> None:
    first = _rows(quick_run, "first_sync")
    assert {(r["params"]["direction"]) for r in first} == {"push", "pull"}
    for row in first:
        assert _median(row, "time_s") > 0
        assert _median(row, "requests") >= 1
        assert _median(row, "bytes") > 0
        assert _median(row, "rss_sender_mb") > 0
        assert _median(row, "rss_receiver_mb") > 0
        assert row["ratio_to_floor"] > 0
    for row in _rows(quick_run, "no_change"):
        # nothing new: a handful of small requests, not the catalog
        assert 0 < _median(row, "bytes") < 8 * 1024
        assert _median(row, "requests") <= 4
    naive_one = next(r for r in _rows(quick_run, "naive") if r["params"]["changes"] == 1)
    for row in _rows(quick_run, "changes"):
        assert _median(row, "bytes") < _median(naive_one, "bytes")
    assert _rows(quick_run, "conflicts")
    assert len(_rows(quick_run, "chain")) == 3
    latency_rows = [r for r in quick_run["results"] if "latency_ms" in r["figures"]]
    assert len(latency_rows) == 2  # one peer, and through a chain
    for row in latency_rows:
        assert 0 < _median(row, "latency_ms") <= _median(row, "p99_ms")


def test_request_counter_follows_http_framing() -> None:
    counter = HttpRequestCounter()
    body = b'{"a": 1}'
    first = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    chunked = (
        b"POST /y HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\nGET \r\n0\r\n\r\n"  # a body that looks like a request line is not one
    )
    get = b"GET /z HTTP/1.1\r\nHost: h\r\n\r\n"
    stream = first + chunked + get
    for i in range(0, len(stream), 7):  # in awkward pieces
        counter.feed(stream[i : i + 7])
    assert counter.requests == 3
    assert not counter.lost


def test_summaries() -> None:
    stat = summarize([3.0, 1.0, 2.0, 10.0])
    assert (stat.median, stat.min, stat.max, stat.n) == (2.5, 1.0, 10.0, 4)
    samples = list(range(1, 101))
    assert percentile(samples, 99) == 99
    assert percentile(samples, 50) == 50
    with pytest.raises(ValueError, match="no samples"):
        summarize([])


def test_write_benchmarks_produce_sane_figures(quick_run: dict[str, Any]) -> None:
    writes = _rows(quick_run, "local_writes")
    ops = {(r["params"]["op"], r["params"]["n"], bool(r["params"].get("raw"))) for r in writes}
    sizes = {n for _, n, _ in ops}
    assert len(sizes) == 2
    assert len(ops) == 3 * 2 * 2  # create/update/delete, two sizes, NEONPAY and raw
    for row in writes:
        assert _median(row, "time_s") > 0
        if not row["params"].get("raw"):
            assert row["ratio_to_floor"] > 0  # over the raw transaction of the same size
    bulk = _rows(quick_run, "bulk_import")
    assert len(bulk) == 2  # the Python call and the CLI
    for row in bulk:
        assert _median(row, "stages_per_s") > 0
        assert _median(row, "time_s") > 0
    names = {t["name"] for t in quick_run["targets"]}
    assert any(name.startswith("local_writes: create") for name in names)
