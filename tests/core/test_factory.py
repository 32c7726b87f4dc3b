"""create_neonpay: where the store comes from, who closes it, and use inside an event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from neonpay import NeonPay, PaymentStage, create_neonpay
from neonpay.errors import ConfigurationError, StorageError
from neonpay.store import STORAGE_ENV, SQLiteStore, open_store

STAGE = PaymentStage("Basic", "The basic plan", 10)


def test_the_default_store_is_neonpay_db_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    with create_neonpay() as np:
        assert isinstance(np.store, SQLiteStore)
        np.create_payment_stage("basic", STAGE)
        node_id = np.node_id
    assert (tmp_path / "neonpay.db").is_file()
    with create_neonpay(bot_instance=None) as again:  # durable: a second start finds it
        assert again.node_id == node_id
        assert again.get_payment_stage("basic") == STAGE


def test_the_environment_names_the_default_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(STORAGE_ENV, f"sqlite:///{tmp_path / 'from-env.db'}")
    with create_neonpay() as np:
        np.create_payment_stage("basic", STAGE)
    assert (tmp_path / "from-env.db").is_file()
    assert not (tmp_path / "neonpay.db").exists()
    # an explicit storage argument wins over the environment
    with create_neonpay(storage=f"sqlite:///{tmp_path / 'explicit.db'}") as np:
        assert np.list_payment_stages() == {}


def test_the_environment_may_name_postgres(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(STORAGE_ENV, postgres_url)
    with create_neonpay() as np:
        assert type(np.store).__name__ == "PostgresStore"
        np.create_payment_stage("basic", STAGE)
    with create_neonpay(storage=postgres_url) as np:
        assert np.get_payment_stage("basic") == STAGE
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "storage",
    ["sqlite:///:memory:", "memory://", "mysql://u:p@h/db", "sqlite://", ":memory:"],
)
def test_unusable_storage_urls(
    storage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError):
        create_neonpay(storage=storage)
    assert list(tmp_path.iterdir()) == []


def test_an_in_memory_default_from_the_environment_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(STORAGE_ENV, "sqlite:///:memory:")
    with pytest.raises(ConfigurationError, match="in-memory"):
        create_neonpay()


@pytest.mark.parametrize("storage", [Path("neonpay.db"), 42, object()])
def test_storage_must_be_a_url_or_a_store(
    storage: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match="URL string or a store object"):
        create_neonpay(storage=storage)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kwargs",
    [{"max_price": 0}, {"max_price": 5.5}, {"max_stages": 0}, {"max_stages": True}],
)
def test_bad_limits_are_configuration_errors(tmp_path: Path, kwargs: dict[str, object]) -> None:
    url = f"sqlite:///{tmp_path / 'neonpay.db'}"
    with pytest.raises(ConfigurationError):
        create_neonpay(storage=url, **kwargs)  # type: ignore[arg-type]
    with create_neonpay(storage=url) as np:  # the refused attempt left the file usable
        assert np.list_payment_stages() == {}


def test_a_store_passed_in_stays_open(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'shared.db'}")
    try:
        with create_neonpay(storage=store) as np:
            np.create_payment_stage("basic", STAGE)
        np.close()
        assert store.get("payment_stage", "basic") is not None  # still usable
        second = create_neonpay(storage=store)
        assert second.get_payment_stage("basic") == STAGE
        second.close()
        assert store.last_seq() == 1
    finally:
        store.close()


def test_close_releases_an_owned_store_once(tmp_path: Path) -> None:
    with create_neonpay(storage=f"sqlite:///{tmp_path / 'neonpay.db'}") as np:
        store = np.store
        np.create_payment_stage("basic", STAGE)
    with pytest.raises(StorageError, match="closed"):
        store.last_seq()
    np.close()  # idempotent


async def test_async_context_manager_closes_an_owned_store(tmp_path: Path) -> None:
    async with create_neonpay(storage=f"sqlite:///{tmp_path / 'neonpay.db'}") as np:
        np.create_payment_stage("basic", STAGE)
        store = np.store
    with pytest.raises(StorageError, match="closed"):
        store.last_seq()


async def test_the_catalog_works_inside_a_running_event_loop(store_url: str) -> None:
    with create_neonpay(storage=store_url) as np:

        async def seller(n: int) -> PaymentStage | None:
            np.create_payment_stage(f"s{n}", PaymentStage("Stage", f"number {n}", 1 + n))
            await asyncio.sleep(0)
            np.update_payment_stage(f"s{n}", price=100 + n)
            await asyncio.sleep(0)
            return np.get_payment_stage(f"s{n}")

        stages = await asyncio.wait_for(asyncio.gather(*(seller(n) for n in range(10))), 30)
        assert [s.price if s else None for s in stages] == [100 + n for n in range(10)]
        assert len(np.list_payment_stages()) == 10
        assert np.store.last_seq() == 20


def test_node_id_is_kept_in_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'neonpay.db'}"
    with create_neonpay(storage=url, node_id="shop-eu") as np:
        assert np.node_id == "shop-eu"
    with create_neonpay(storage=url) as np:
        assert np.node_id == "shop-eu"
    with pytest.raises(ConfigurationError, match="shop-eu"):
        create_neonpay(storage=url, node_id="shop-us")


def test_repr_and_stats(tmp_path: Path) -> None:
    with create_neonpay(storage=f"sqlite:///{tmp_path / 'neonpay.db'}") as np:
        np.create_payment_stage("basic", STAGE)
        np.promotions.create_promo_code("SAVE", "percentage", 10)
        assert np.node_id in repr(np)
        stats = np.get_stats()
        assert (stats["payment_stages"], stats["promo_codes"], stats["templates"]) == (1, 1, 0)
        assert isinstance(np, NeonPay)


def test_a_plain_path_is_a_sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with create_neonpay(storage="neonpay.db") as np:
        np.create_payment_stage("basic", STAGE)
    with create_neonpay(storage="sqlite:///neonpay.db") as np:
        assert np.get_payment_stage("basic") == STAGE
