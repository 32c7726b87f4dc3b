"""Templates: named catalogs (products in categories, plus theme settings), stored as
``template`` records keyed by name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from neonpay.core import validation as v
from neonpay.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from neonpay.core.catalog import Catalog

__all__ = ["KIND", "Template", "TemplateCategory", "TemplateManager", "TemplateProduct"]

KIND = "template"
MAX_PRODUCTS = 1000
MAX_CATEGORIES = 100
MAX_THEME_KEYS = 50


@dataclass(frozen=True)
class TemplateCategory:
    """A group of products in a template."""

    id: str
    name: str
    description: str = ""

    def __post_init__(self) -> None:
        v.check_id(self.id, "categories.id", kind=KIND)
        v.check_text(self.name, "categories.name", max_len=64, kind=KIND)
        v.check_text(
            self.description,
            "categories.description",
            min_len=0,
            max_len=v.MAX_DESCRIPTION,
            kind=KIND,
        )


@dataclass(frozen=True)
class TemplateProduct:
    """A product of a template; ``price`` in whole Stars."""

    id: str
    name: str
    price: int
    description: str = ""
    category_id: str | None = None
    photo_url: str | None = None

    def __post_init__(self) -> None:
        v.check_id(self.id, "products.id", kind=KIND)
        v.check_text(self.name, "products.name", max_len=v.MAX_TITLE, kind=KIND)
        v.check_int(self.price, "products.price", low=1, high=v.DEFAULT_MAX_PRICE, kind=KIND)
        v.check_text(
            self.description,
            "products.description",
            min_len=0,
            max_len=v.MAX_DESCRIPTION,
            kind=KIND,
        )
        if self.category_id is not None:
            v.check_id(self.category_id, "products.category_id", kind=KIND)
        v.check_url(self.photo_url, "products.photo_url", kind=KIND)


@dataclass(frozen=True)
class Template:
    """A named catalog with a theme (``theme`` maps names to short strings)."""

    name: str
    description: str = ""
    products: tuple[TemplateProduct, ...] = ()
    categories: tuple[TemplateCategory, ...] = ()
    theme: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        v.check_id(self.name, "name", kind=KIND)
        v.check_text(
            self.description, "description", min_len=0, max_len=v.MAX_DESCRIPTION, kind=KIND
        )
        products = tuple(_item(TemplateProduct, p, "products") for p in self.products)
        categories = tuple(_item(TemplateCategory, c, "categories") for c in self.categories)
        object.__setattr__(self, "products", products)
        object.__setattr__(self, "categories", categories)
        if len(self.products) > MAX_PRODUCTS:
            raise ValidationError("products", f"at most {MAX_PRODUCTS} products", kind=KIND)
        if len(self.categories) > MAX_CATEGORIES:
            raise ValidationError("categories", f"at most {MAX_CATEGORIES} categories", kind=KIND)
        category_ids = [c.id for c in self.categories]
        if len(set(category_ids)) != len(category_ids):
            raise ValidationError("categories", "category ids must be unique", kind=KIND)
        product_ids = [p.id for p in self.products]
        if len(set(product_ids)) != len(product_ids):
            raise ValidationError("products", "product ids must be unique", kind=KIND)
        for product in self.products:
            if product.category_id is not None and product.category_id not in category_ids:
                raise ValidationError(
                    "products.category_id",
                    f"product {product.id!r} names unknown category {product.category_id!r}",
                    kind=KIND,
                )
        if not isinstance(self.theme, Mapping) or len(self.theme) > MAX_THEME_KEYS:
            raise ValidationError(
                "theme", f"must map at most {MAX_THEME_KEYS} names to text", kind=KIND
            )
        for key, value in self.theme.items():
            v.check_id(key, "theme", kind=KIND)
            v.check_text(value, f"theme.{key}", min_len=0, max_len=256, kind=KIND)
        object.__setattr__(self, "theme", dict(sorted(self.theme.items())))

    def to_fields(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "products": [
                {
                    "id": p.id,
                    "name": p.name,
                    "price": p.price,
                    "description": p.description,
                    "category_id": p.category_id,
                    "photo_url": p.photo_url,
                }
                for p in self.products
            ],
            "categories": [
                {"id": c.id, "name": c.name, "description": c.description} for c in self.categories
            ],
            "theme": dict(self.theme),
        }

    @classmethod
    def from_fields(cls, name: str, fields: Mapping[str, Any]) -> Template:
        try:
            return cls(
                name=name,
                description=fields.get("description", ""),
                products=tuple(TemplateProduct(**p) for p in fields.get("products", ())),
                categories=tuple(TemplateCategory(**c) for c in fields.get("categories", ())),
                theme=fields.get("theme", {}),
            )
        except TypeError as exc:
            raise ValidationError(
                "fields", f"unexpected template structure: {exc}", kind=KIND
            ) from exc


_Item = TypeVar("_Item", TemplateProduct, TemplateCategory)


def _item(cls: type[_Item], value: Any, field_name: str) -> _Item:
    """A product or category given as such or as a mapping of its fields."""
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        try:
            return cls(**value)
        except TypeError as exc:
            raise ValidationError(field_name, f"unexpected fields: {exc}", kind=KIND) from exc
    raise ValidationError(
        field_name, f"must be {cls.__name__} objects or mappings of their fields", kind=KIND
    )


class TemplateManager:
    """Templates in the store: ``neonpay.templates``."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def create_template(
        self,
        name: str,
        *,
        description: str = "",
        products: Sequence[TemplateProduct] = (),
        categories: Sequence[TemplateCategory] = (),
        theme: Mapping[str, str] | None = None,
    ) -> Template:
        """Create (or replace) a template."""
        template = Template(name, description, tuple(products), tuple(categories), theme or {})
        return self.save(template)

    def save(self, template: Template) -> Template:
        fields = template.to_fields()
        self._catalog.write(KIND, template.name, lambda old: fields)
        return template

    def get_template(self, name: str) -> Template | None:
        record = self._catalog.store.get(KIND, name)
        return Template.from_fields(name, record.fields) if record else None

    def list_templates(self) -> dict[str, Template]:
        return {
            r.key: Template.from_fields(r.key, r.fields) for r in self._catalog.store.list(KIND)
        }

    def update_template(self, name: str, **changes: Any) -> Template:
        allowed = {"description", "products", "categories", "theme"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValidationError(
                sorted(unknown)[0], f"is not a template field ({sorted(allowed)})", kind=KIND
            )
        result: list[Template] = []

        def patch(old: Mapping[str, Any] | None) -> Mapping[str, Any]:
            if old is None:
                raise NotFoundError(f"no template {name!r}")
            merged = Template.from_fields(name, old)
            template = Template(
                name,
                changes.get("description", merged.description),
                tuple(changes.get("products", merged.products)),
                tuple(changes.get("categories", merged.categories)),
                changes.get("theme", merged.theme),
            )
            result.append(template)
            return template.to_fields()

        self._catalog.write(KIND, name, patch)
        return result[0]

    def remove_template(self, name: str) -> bool:
        return self._catalog.delete(KIND, name)

    # short aliases
    create = create_template
    get = get_template
    list = list_templates
    update = update_template
    remove = remove_template
