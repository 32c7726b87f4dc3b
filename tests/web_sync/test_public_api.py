"""The public surface of neonpay.web_sync, and its OpenAPI document."""

from __future__ import annotations

import importlib

from neonpay import web_sync
from neonpay.web_sync import create_sync_app, openapi_document
from neonpay.web_sync.errors import ERROR_CODES

from .conftest import MakeNode
from .helpers import SECRET


def test_all_names_import() -> None:
    module = importlib.import_module("neonpay.web_sync")
    for name in module.__all__:
        assert getattr(module, name) is not None
    for promised in ("create_sync_app", "run_sync_server", "HttpTransport", "SyncConnector"):
        assert promised in web_sync.__all__
    assert web_sync.SECRET_ENV == "NEONPAY_SYNC_SECRET"


def test_the_document_describes_every_route(make_node: MakeNode) -> None:
    app = create_sync_app(make_node("node-a"), webhook_secret=SECRET)
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }
    doc = openapi_document()
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert routes == documented
    assert doc["openapi"].startswith("3.1")
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    codes = doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]
    assert codes["enum"] == sorted(ERROR_CODES)
    for ops in doc["paths"].values():
        for op in ops.values():
            for status in op["responses"]:
                assert int(status) == 200 or 400 <= int(status) < 500 or int(status) == 503
