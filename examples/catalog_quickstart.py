"""A catalog on SQLite that survives restarts: run it twice and watch the counts."""

from __future__ import annotations

import tempfile
from pathlib import Path

from neonpay import DiscountType, PaymentStage, create_neonpay


def main() -> None:
    path = Path(tempfile.gettempdir()) / "neonpay-quickstart.db"
    with create_neonpay(storage=f"sqlite:///{path}") as neonpay:
        neonpay.create_payment_stage(
            "premium", PaymentStage("Premium", "30 days of premium access", price=50)
        )
        neonpay.promotions.create_promo_code("WELCOME10", DiscountType.PERCENTAGE, 10)
        quote = neonpay.promotions.apply("WELCOME10", amount=50)
        print(f"store {neonpay.store.url} node {neonpay.node_id}")
        print(f"stages: {sorted(neonpay.list_payment_stages())}")
        print(f"premium with WELCOME10: {quote.final_price} Stars (was {quote.original_price})")
        print(f"change log head: {neonpay.store.last_seq()}")


if __name__ == "__main__":
    main()
