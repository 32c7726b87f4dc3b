"""Templates: unique ids, category references, limits; rejections change nothing."""

from __future__ import annotations

from typing import Any

import pytest

from neonpay import NeonPay, Template, TemplateCategory, TemplateProduct
from neonpay.core.templates import MAX_CATEGORIES, MAX_PRODUCTS, MAX_THEME_KEYS
from neonpay.errors import NotFoundError, ValidationError

from .store_state import nothing_changes

CATS = [TemplateCategory("plans", "Plans"), TemplateCategory("extras", "Extras", "Add-ons")]
PRODUCTS = [
    TemplateProduct("basic", "Basic", 10, category_id="plans"),
    TemplateProduct("pro", "Pro", 99, "Everything", "plans", "https://example.com/p.png"),
    TemplateProduct("sticker", "Sticker", 1),
]


def shop(np: NeonPay) -> Template:
    return np.templates.create_template(
        "shop", description="The shop", products=PRODUCTS, categories=CATS, theme={"color": "b"}
    )


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"name": "has space"}, "name", "letters"),
    ({"name": ""}, "name", "1-64"),
    ({"description": "d" * 256}, "description", "0-255"),
    ({"products": [*PRODUCTS, PRODUCTS[0]]}, "products", "unique"),
    ({"categories": [*CATS, CATS[0]]}, "categories", "unique"),
    (
        {"products": [TemplateProduct("p", "P", 5, category_id="nowhere")]},
        "products.category_id",
        "unknown category",
    ),
    ({"categories": CATS[1:]}, "products.category_id", "unknown category"),
    (
        {"products": [TemplateProduct(f"p{i}", "P", 1) for i in range(MAX_PRODUCTS + 1)]},
        "products",
        f"at most {MAX_PRODUCTS}",
    ),
    (
        {"categories": [TemplateCategory(f"c{i}", "C") for i in range(MAX_CATEGORIES + 1)]},
        "categories",
        f"at most {MAX_CATEGORIES}",
    ),
    ({"theme": {f"k{i}": "v" for i in range(MAX_THEME_KEYS + 1)}}, "theme", "at most"),
    ({"theme": {"color": "x" * 257}}, "theme.color", "0-256"),
    ({"theme": {"bad key": "x"}}, "theme", "letters"),
    ({"theme": {"color": 5}}, "theme.color", "string"),
    ({"products": [{"id": "p", "name": "P", "price": 0}]}, "products.price", "at least 1"),
    ({"products": [{"id": "p", "name": "P", "price": 1, "size": "L"}]}, "products", "size"),
    ({"products": ["basic"]}, "products", "mappings"),
    ({"categories": [{"id": "c"}]}, "categories", "name"),
]


@pytest.mark.parametrize(("changes", "field", "rule"), BAD)
def test_a_bad_template_is_refused(
    np: NeonPay, changes: dict[str, Any], field: str, rule: str
) -> None:
    created = shop(np)
    arguments: dict[str, Any] = {
        "name": "other",
        "description": "",
        "products": PRODUCTS,
        "categories": CATS,
        **changes,
    }
    with nothing_changes(np):
        with pytest.raises(ValidationError, match=rule) as info:
            np.templates.create_template(arguments.pop("name"), **arguments)
        assert info.value.field == field
        if "name" not in changes:
            with pytest.raises(ValidationError, match=rule):
                np.templates.update_template("shop", **changes)
    assert np.templates.get_template("shop") == created
    assert np.templates.get_template("other") is None


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("id", "bad id", "letters"),
        ("name", "n" * 33, "1-32"),
        ("price", 10_001, "at most 10000"),
        ("price", True, "whole number"),
        ("description", "d" * 256, "0-255"),
        ("photo_url", "ftp://x/y", "http"),
        ("category_id", "bad id", "letters"),
    ],
)
def test_product_fields(field: str, value: Any, rule: str) -> None:
    fields: dict[str, Any] = {"id": "p", "name": "P", "price": 5, field: value}
    with pytest.raises(ValidationError, match=rule) as info:
        TemplateProduct(**fields)
    assert info.value.field == f"products.{field}"


def test_crud(np: NeonPay) -> None:
    created = shop(np)
    assert created.products == tuple(PRODUCTS)
    assert np.templates.get_template("shop") == created
    assert np.templates.get_template("missing") is None
    assert np.templates.list_templates() == {"shop": created}

    updated = np.templates.update_template("shop", theme={"color": "red", "font": "mono"})
    assert updated.theme == {"color": "red", "font": "mono"}
    assert updated.products == created.products
    assert np.templates.get_template("shop") == updated

    # products and categories may be given as mappings of their fields
    from_dicts = np.templates.update_template(
        "shop",
        categories=[{"id": "all", "name": "All"}],
        products=[{"id": "one", "name": "One", "price": 3, "category_id": "all"}],
    )
    assert from_dicts.products == (TemplateProduct("one", "One", 3, category_id="all"),)
    assert np.templates.get_template("shop") == from_dicts

    assert np.templates.remove_template("shop") is True
    assert np.templates.remove_template("shop") is False
    assert np.templates.list_templates() == {}


def test_recreating_the_same_template_is_a_no_op(np: NeonPay) -> None:
    shop(np)
    with nothing_changes(np):
        shop(np)
        np.templates.update_template("shop", description="The shop")


def test_update_rules(np: NeonPay) -> None:
    created = shop(np)
    with nothing_changes(np):
        with pytest.raises(ValidationError) as info:
            np.templates.update_template("shop", colour="red")
        assert info.value.field == "colour"
        with pytest.raises(NotFoundError):
            np.templates.update_template("missing", description="x")
    assert np.templates.get_template("shop") == created
