"""SyncConnector: the spec's send_data snippets against a real server."""

from __future__ import annotations

import asyncio
import logging

import pytest

from neonpay import PaymentStage
from neonpay.errors import ConfigurationError, PeerUnreachable
from neonpay.sync.protocol import PushResult
from neonpay.web_sync import SyncConnector

from .conftest import MakeNode, Served
from .helpers import SECRET, dump_store


async def test_plain_stage_dicts_in_batches_as_the_spec_sends_them(served: Served) -> None:
    stages_data = [
        {"stage_id": f"item-{i}", "title": f"Item {i}", "description": "Sold here", "price": 5 + i}
        for i in range(25)
    ]
    async with SyncConnector(served.server.url, SECRET) as connector:
        batch_size = 10
        batches = [stages_data[i : i + batch_size] for i in range(0, len(stages_data), batch_size)]
        outcomes = [
            await connector.send_data("/sync/payment_stages", {"data": batch}) for batch in batches
        ]
    assert outcomes == [True, True, True]
    stages = served.node.list_payment_stages()
    assert len(stages) == 25
    assert stages["item-3"].price == 8


async def test_records_promo_codes_templates_and_settings(
    served: Served, make_node: MakeNode
) -> None:
    source = make_node("node-source")
    source.create_payment_stage("premium", PaymentStage("Premium", "The best", 50))
    records = source.store.feed(0, 100).records
    async with SyncConnector(served.server.url, SECRET) as connector:
        assert await connector.send_data("/sync/changes", {"records": records})
        assert await connector.send_data("/sync/changes", [r.to_wire() for r in records])  # known
        assert await connector.send_data(
            "promo_codes",
            {"data": [{"code": "save10", "discount_type": "percentage", "discount_value": 10}]},
        )
        assert await connector.send_data(
            "/sync/templates/", {"data": [{"name": "shop", "description": "A shop"}]}
        )
        assert await connector.send_data(
            "sync/settings", {"data": [{"name": "thank_you_message", "value": "Merci"}]}
        )
    assert served.node.get_payment_stage("premium") is not None
    assert served.node.promotions.get_promo_code("SAVE10") is not None
    assert served.node.templates.get_template("shop") is not None
    assert served.node.thank_you_message == "Merci"


def last_result(connector: SyncConnector) -> PushResult | None:
    return connector.last_result


async def test_false_when_an_item_is_refused_and_nothing_bad_is_stored(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    before = dump_store(served.node)
    async with SyncConnector(served.server.url, SECRET) as connector:
        too_dear = {"stage_id": "gold", "title": "Gold", "description": "d", "price": 999_999}
        with caplog.at_level(logging.WARNING, "neonpay.web_sync.connector"):
            assert not await connector.send_data("/sync/payment_stages", {"data": [too_dear]})
        assert connector.last_result is not None
        assert "at most 10000" in connector.last_result.results[0].reason
        assert "gold" in caplog.text
        # a plain item that breaks a rule locally never leaves
        assert not await connector.send_data(
            "/sync/payment_stages", {"data": [{"stage_id": "x", "title": "", "price": 5}]}
        )
        assert connector.last_error is not None
        assert last_result(connector) is None
        # items that are not of the view's kind never leave
        assert not await connector.send_data(
            "/sync/templates", {"data": [{"stage_id": "y", "title": "Y", "price": 5}]}
        )
    assert dump_store(served.node) == before


async def test_false_on_a_conflict(served: Served) -> None:
    served.node.create_payment_stage("premium", PaymentStage("Premium", "Ours", 50))
    async with SyncConnector(served.server.url, SECRET) as connector:
        ok = await connector.send_data(
            "/sync/payment_stages",
            {
                "data": [
                    {
                        "stage_id": "premium",
                        "title": "Premium",
                        "description": "Theirs",
                        "price": 60,
                    }
                ]
            },
        )
        assert not ok
        assert connector.last_result is not None
        assert connector.last_result.results[0].outcome.value == "conflict"
    assert served.node.get_payment_stage("premium").description == "Ours"  # type: ignore[union-attr]


async def test_false_never_true_when_the_peer_is_down(make_node: MakeNode) -> None:
    async with SyncConnector("http://127.0.0.1:9/sync", SECRET, retries=0) as connector:
        ok = await connector.send_data("/sync/settings", {"data": [{"name": "x", "value": 1}]})
    assert ok is False
    assert isinstance(connector.last_error, PeerUnreachable)


async def test_the_spec_retry_snippet_runs(served: Served) -> None:
    connector = SyncConnector(served.server.url, SECRET)
    endpoint, data = "/sync/settings", {"data": [{"name": "greeting", "value": "hi"}]}

    async def robust_webhook_sync() -> bool:
        max_retries = 3
        retry_delay = 0.01
        for attempt in range(max_retries):
            try:
                success = await connector.send_data(endpoint, data)
                if success:
                    return True
            except Exception:
                if attempt < max_retries - 1:
                    await asyncio.sleep(retry_delay)
                    retry_delay *= 2
        return False

    try:
        assert await robust_webhook_sync()
    finally:
        await connector.close()
    assert served.node.settings.get("greeting") == "hi"


async def test_fetch_data(served: Served) -> None:
    served.node.settings.set("greeting", "hello")
    async with SyncConnector(served.server.url, SECRET) as connector:
        page = await connector.fetch_data("/sync/settings")
        assert [(r.key, r.fields) for r in page.records] == [("greeting", {"value": "hello"})]
        changes = await connector.fetch_data("/sync/changes")
        assert [r.key for r in changes.records] == ["greeting"]


@pytest.mark.parametrize("endpoint", ["/sync/users", "/health", "/sync/status", ""])
async def test_unknown_endpoints_are_configuration_errors(endpoint: str) -> None:
    async with SyncConnector("http://127.0.0.1:9/sync", SECRET) as connector:
        with pytest.raises(ConfigurationError):
            await connector.send_data(endpoint, {"data": []})
