"""BotSyncConfig: checked on construction, masked in repr, stored and rebuilt whole."""

from __future__ import annotations

import pytest

from neonpay import ConfigurationError
from neonpay.sync.config import BotSyncConfig, ConflictResolution, SyncDirection

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def test_defaults_follow_the_spec() -> None:
    config = BotSyncConfig(conflict_resolution=ConflictResolution.SOURCE_WINS)
    assert config.direction is SyncDirection.BIDIRECTIONAL
    assert config.conflict_resolution is ConflictResolution.SOURCE_WINS
    assert config.sync_interval_minutes == 60
    assert config.auto_sync is False
    assert config.sync_analytics is False
    assert config.kinds == ("payment_stage", "promo_code", "promo_usage", "template", "setting")


def test_values_given_as_strings_become_enums() -> None:
    config = BotSyncConfig(direction="PUSH", conflict_resolution="target-wins")  # type: ignore[arg-type]
    assert config.direction is SyncDirection.PUSH
    assert config.conflict_resolution is ConflictResolution.TARGET_WINS


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"direction": "sideways"}, "unknown direction"),
        ({"conflict_resolution": "coin_flip"}, "unknown conflict_resolution"),
        ({"sync_interval_minutes": 0}, "sync_interval_minutes"),
        ({"sync_interval_minutes": 0.001}, "sync_interval_minutes"),
        ({"sync_interval_minutes": float("nan")}, "sync_interval_minutes"),
        ({"sync_interval_minutes": 10**7}, "sync_interval_minutes"),
        ({"sync_interval_minutes": "30"}, "sync_interval_minutes"),
        ({"sync_interval_minutes": True}, "sync_interval_minutes"),
        ({"webhook_url": "ftp://host/sync"}, "http"),
        ({"webhook_url": "not a url"}, "http"),
        ({"webhook_url": "https:///sync"}, "http"),
        ({"webhook_url": "https://user:pw@host/sync"}, "credentials"),
        ({"webhook_url": "https://host/sync?x=1"}, "query"),
        ({"webhook_url": "https://host:99999/sync"}, "port"),
        ({"auto_sync": "yes"}, "auto_sync"),
        ({"sync_templates": 1}, "sync_templates"),
        ({"webhook_secret": ""}, "webhook_secret"),
        ({"webhook_secret_env": "NOT A VAR"}, "webhook_secret_env"),
        ({"page_size": 0}, "page_size"),
        ({"target_bot_name": "x" * 101}, "target_bot_name"),
    ],
)
def test_bad_settings_are_refused(options: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        BotSyncConfig(**{"target_bot_name": "Peer", **options})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://store-bot.example.com", "https://store-bot.example.com/sync"),
        ("https://store-bot.example.com/", "https://store-bot.example.com/sync"),
        ("https://store-bot.example.com/sync", "https://store-bot.example.com/sync"),
        ("https://store-bot.example.com/sync/", "https://store-bot.example.com/sync"),
        ("http://127.0.0.1:8080/bots/a/sync", "http://127.0.0.1:8080/bots/a/sync"),
    ],
)
def test_sync_url_gets_its_path(given: str, expected: str) -> None:
    assert BotSyncConfig(target_bot_name="Peer", webhook_url=given).webhook_url == expected


def test_shortest_interval_is_allowed() -> None:
    assert BotSyncConfig(sync_interval_minutes=0.01).sync_interval_seconds == pytest.approx(0.6)


def test_token_and_secret_never_show() -> None:
    config = BotSyncConfig(
        target_bot_token=TOKEN,
        target_bot_name="Store",
        webhook_url="https://store.example.com/sync",
        webhook_secret="very-secret-value-123",
    )
    for text in (repr(config), str(config), str(config.to_public_dict())):
        assert TOKEN not in text
        assert "very-secret-value-123" not in text
    assert "123456789:AA…aw" in repr(config)
    assert config.to_public_dict()["has_secret"] is True


def test_round_trip_through_a_dict_keeps_everything() -> None:
    config = BotSyncConfig(
        target_bot_token=TOKEN,
        target_bot_name="Support Bot",
        sync_payment_stages=False,
        direction=SyncDirection.PUSH,
        conflict_resolution=ConflictResolution.ASK_USER,
        auto_sync=True,
        sync_interval_minutes=30,
        webhook_url="https://support-bot.example.com/sync",
        webhook_secret="s3cret-s3cret",
    )
    again = BotSyncConfig.from_dict(config.to_dict())
    assert again == config
    assert again.webhook_secret == "s3cret-s3cret"
    assert again.kinds == ("promo_code", "promo_usage", "template", "setting")


def test_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config = BotSyncConfig(target_bot_name="Peer", webhook_secret_env="PEER_SECRET")
    monkeypatch.delenv("PEER_SECRET", raising=False)
    with pytest.raises(ConfigurationError, match="PEER_SECRET"):
        config.secret()
    monkeypatch.setenv("PEER_SECRET", "from-env")
    assert config.secret() == "from-env"
    assert "from-env" not in repr(config)


def test_selective_flags_choose_kinds() -> None:
    config = BotSyncConfig(
        sync_payment_stages=True,
        sync_promo_codes=False,
        sync_templates=True,
        sync_settings=False,
        sync_analytics=False,
    )
    assert config.kinds == ("payment_stage", "template")
