"""Issue 13, items 4 and 5 over real signed HTTP: a restored store takes a new node id
and loses no write; a stamp ahead by more than the tolerance is refused with 422."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest

from neonpay import PaymentStage, create_neonpay
from neonpay.errors import PeerRejected
from neonpay.sync.clock import HLC
from neonpay.sync.config import BotSyncConfig, ConflictResolution, SyncDirection
from neonpay.sync.manager import SyncManager
from neonpay.sync.results import SyncStatus
from neonpay.web_sync import HttpTransport, SyncServer

from .helpers import SECRET, dump_store


def _stage(title: str, price: int) -> PaymentStage:
    return PaymentStage(title=title, description="A product", price=price)


@pytest.mark.parametrize(
    ("direction", "strategy", "price"),
    [
        (SyncDirection.PUSH, ConflictResolution.SOURCE_WINS, 10),
        (SyncDirection.BIDIRECTIONAL, ConflictResolution.MERGE, 25),
    ],
)
async def test_a_restored_store_loses_no_write_over_http(
    tmp_path: Path, direction: SyncDirection, strategy: ConflictResolution, price: int
) -> None:
    a_url = f"sqlite:///{tmp_path / 'A.db'}"
    a = create_neonpay(storage=a_url, node_id="A")
    b = create_neonpay(storage=f"sqlite:///{tmp_path / 'B.db'}", node_id="B")
    try:
        a.create_payment_stage("s1", _stage("First", 10))
        a.close()
        shutil.copyfile(tmp_path / "A.db", tmp_path / "A.backup")
        a = create_neonpay(storage=a_url)
        a.update_payment_stage("s1", title="Second")
        config = BotSyncConfig(
            target_bot_name="B", direction=direction, conflict_resolution=strategy
        )
        async with SyncServer(b, port=0, webhook_secret=SECRET) as server:
            url = f"http://127.0.0.1:{server.port}/sync"

            async def sync() -> None:
                transport = HttpTransport(url, secret=SECRET)
                async with SyncManager(a, config, transport) as manager:
                    result = await manager.sync_all()
                assert result.status is SyncStatus.COMPLETED, result.errors

            await sync()
            b.update_payment_stage("s1", price=25)
            a.close()
            for suffix in ("-wal", "-shm"):
                (tmp_path / f"A.db{suffix}").unlink(missing_ok=True)
            shutil.copyfile(tmp_path / "A.backup", tmp_path / "A.db")
            a = create_neonpay(storage=a_url)
            a.update_payment_stage("s1", title="After restore")
            for _ in range(3):
                await sync()
        theirs, ours = b.store.get("payment_stage", "s1"), a.store.get("payment_stage", "s1")
        assert theirs is not None
        assert ours is not None
        assert (theirs.fields, theirs.version) == (ours.fields, ours.version)
        assert (theirs.fields["title"], theirs.fields["price"]) == ("After restore", price)
        assert a.node_id != "A"
        assert [e["node_id"] for e in a.store.retired_node_ids()] == ["A"]
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize(("ahead", "refused"), [(299, False), (301, True)])
async def test_a_stamp_ahead_of_the_tolerance_is_refused_over_http(
    tmp_path: Path, ahead: int, refused: bool
) -> None:
    a = create_neonpay(storage=f"sqlite:///{tmp_path / 'A.db'}", node_id="A")
    b = create_neonpay(storage=f"sqlite:///{tmp_path / 'B.db'}", node_id="B")
    try:
        a.create_payment_stage("s1", _stage("First", 10))
        state = a.store.get("payment_stage", "s1")
        assert state is not None
        stamp = HLC(int((time.time() + ahead) * 1000), 0, "A").encode()
        sent = replace(state, hlc=stamp, field_hlcs=dict.fromkeys(state.field_hlcs, stamp), seq=0)
        async with SyncServer(b, port=0, webhook_secret=SECRET) as server:
            before = dump_store(b)
            async with HttpTransport(
                f"http://127.0.0.1:{server.port}/sync", secret=SECRET
            ) as transport:
                if refused:
                    with pytest.raises(PeerRejected) as caught:
                        await transport.push([sent], sender="A")
                    assert caught.value.status == 422
                    assert "clock" in str(caught.value)
                    assert dump_store(b) == before
                else:
                    result = await transport.push([sent], sender="A")
                    assert result.results[0].outcome.value == "applied"
        clock = HLC.decode(b.store.last_hlc()) if b.store.last_hlc() else None
        assert clock is None or clock.wall_ms <= (time.time() + 300) * 1000
    finally:
        a.close()
        b.close()
