"""The OpenAPI 3.1 document of the sync server, served at ``GET /sync/openapi.json``."""

from __future__ import annotations

from typing import Any

from neonpay._version import __version__
from neonpay.store.base import KINDS
from neonpay.web_sync.codec import MAX_COUNTER
from neonpay.web_sync.endpoints import CHANGES, HEALTH, INFO, OPENAPI, STATUS, VIEWS
from neonpay.web_sync.errors import ERROR_CODES
from neonpay.web_sync.limits import DEFAULT_LIMITS, Limits
from neonpay.web_sync.signing import ID_HEADER, NODE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER

__all__ = ["openapi_document"]

_NODE = "^[A-Za-z0-9_-]{1,64}$"
_HLC = "^[0-9]{15}\\.[0-9]{6}\\.[A-Za-z0-9_-]{1,64}$"
_OUTCOMES = ["applied", "known", "conflict", "rejected"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for status in statuses:
        codes = sorted(code for code, (s, _) in ERROR_CODES.items() if s == status)
        answers[str(status)] = _json_body(
            _ref("Error"), f"Refused ({', '.join(codes) or 'error'}); nothing changed."
        )
    return answers


def _schemas(limits: Limits) -> dict[str, Any]:
    record = {
        "type": "object",
        "description": "One state of a record (fields plus replication metadata).",
        "required": ["kind", "key", "fields", "version", "hlc", "field_hlcs", "deleted"],
        "additionalProperties": False,
        "properties": {
            "kind": {"type": "string", "enum": list(KINDS)},
            "key": {"type": "string", "minLength": 1, "maxLength": limits.max_key},
            "fields": {
                "type": "object",
                "maxProperties": limits.max_fields,
                "description": "The record's fields; empty for a deleted record. Checked "
                "against the same rules as a local write.",
            },
            "version": {
                "type": "object",
                "description": "Version vector: node id -> number of that node's writes seen.",
                "minProperties": 1,
                "maxProperties": limits.max_version_nodes,
                "propertyNames": {"pattern": _NODE},
                "additionalProperties": {"type": "integer", "minimum": 0, "maximum": MAX_COUNTER},
            },
            "hlc": {"type": "string", "pattern": _HLC},
            "field_hlcs": {
                "type": "object",
                "maxProperties": limits.max_fields,
                "additionalProperties": {"type": "string", "pattern": _HLC},
            },
            "deleted": {"type": "boolean"},
            "origin": {"type": "string", "pattern": "^([A-Za-z0-9_-]{1,64})?$"},
            "updated_at": {"type": "number", "minimum": 0},
            "resolution": {"type": "boolean"},
        },
    }
    return {
        "Record": record,
        "PushRequest": {
            "type": "object",
            "required": ["records"],
            "additionalProperties": False,
            "properties": {
                "records": {"type": "array", "maxItems": limits.max_batch, "items": _ref("Record")}
            },
        },
        "ChangesPage": {
            "type": "object",
            "required": ["node_id", "changes", "next_cursor", "has_more"],
            "additionalProperties": False,
            "properties": {
                "node_id": {"type": "string", "pattern": _NODE},
                "changes": {"type": "array", "items": _ref("Record")},
                "next_cursor": {"type": "integer", "minimum": 0},
                "has_more": {"type": "boolean"},
            },
        },
        "ItemResult": {
            "type": "object",
            "required": ["kind", "key", "outcome"],
            "additionalProperties": False,
            "properties": {
                "kind": {"type": "string", "enum": list(KINDS)},
                "key": {"type": "string"},
                "outcome": {"type": "string", "enum": _OUTCOMES},
                "reason": {"type": "string", "description": "Why, for rejected items."},
                "current": {
                    **_ref("Record"),
                    "description": "The receiver's state, for conflicts.",
                },
            },
        },
        "PushResult": {
            "type": "object",
            "required": ["node_id", "results"],
            "additionalProperties": False,
            "properties": {
                "node_id": {"type": "string", "pattern": _NODE},
                "results": {"type": "array", "items": _ref("ItemResult")},
            },
        },
        "PeerInfo": {
            "type": "object",
            "required": ["node_id", "last_seq", "protocol", "software"],
            "additionalProperties": False,
            "properties": {
                "node_id": {"type": "string", "pattern": _NODE},
                "last_seq": {"type": "integer", "minimum": 0},
                "protocol": {"type": "integer", "minimum": 1},
                "software": {"type": "string"},
            },
        },
        "Status": {
            "type": "object",
            "description": "Node id, head of the log, versions, peers with cursors and lag, "
            "pending conflicts. Holds no token and no secret.",
            "required": ["node_id", "last_seq", "protocol", "peers", "pending_conflicts"],
            "properties": {
                "node_id": {"type": "string"},
                "last_seq": {"type": "integer"},
                "protocol": {"type": "integer"},
                "version": {"type": "string"},
                "kinds": {"type": "array", "items": {"type": "string"}},
                "peers": {"type": "array", "items": {"type": "object"}},
                "pending_conflicts": {"type": "integer"},
            },
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "additionalProperties": False,
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "enum": sorted(ERROR_CODES)},
                        "message": {"type": "string"},
                    },
                }
            },
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"type": "string", "enum": ["ok"]}},
        },
    }


def _parameters(limits: Limits) -> dict[str, Any]:
    def header(name: str, description: str, required: bool = True) -> dict[str, Any]:
        return {
            "name": name,
            "in": "header",
            "required": required,
            "description": description,
            "schema": {"type": "string"},
        }

    return {
        "WebhookId": header(ID_HEADER, "Unique message id, 1-128 of A-Z a-z 0-9 _ . : -."),
        "WebhookTimestamp": header(TIMESTAMP_HEADER, "Unix seconds when the message was signed."),
        "WebhookSignature": header(
            SIGNATURE_HEADER,
            "v1,<base64 HMAC-SHA256> over '{id}.{timestamp}.{METHOD} {target}\\n{node}\\n{body}'; "
            "several space-separated signatures may be given.",
        ),
        "Requester": header(
            NODE_HEADER, "The requesting node's id (its own changes are left out).", False
        ),
        "Sender": header(NODE_HEADER, "The sending node's id (required for a push)."),
        "Since": {
            "name": "since",
            "in": "query",
            "required": False,
            "description": "Cursor: return changes after this sequence number (default 0).",
            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_COUNTER},
        },
        "Limit": {
            "name": "limit",
            "in": "query",
            "required": False,
            "description": "Most records in the page (default 500).",
            "schema": {"type": "integer", "minimum": 1, "maximum": limits.max_page},
        },
        "Kinds": {
            "name": "kinds",
            "in": "query",
            "required": False,
            "description": "Comma-separated kinds to include; absent: all; empty: none.",
            "schema": {"type": "string", "pattern": f"^(({'|'.join(KINDS)})(,|$))*$"},
        },
        "Peer": {
            "name": "peer",
            "in": "query",
            "required": False,
            "description": "Only this configured peer's status (404 unknown_peer otherwise).",
            "schema": {"type": "string", "maxLength": 100},
        },
    }


def _signed(*names: str) -> list[dict[str, str]]:
    refs = ["WebhookId", "WebhookTimestamp", "WebhookSignature", *names]
    return [{"$ref": f"#/components/parameters/{name}"} for name in refs]


def openapi_document(limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """The OpenAPI 3.1 description of every endpoint, with the limits in force."""
    page_ok = {"200": _json_body(_ref("ChangesPage"), "A page of changes, signed.")}
    push_ok = {"200": _json_body(_ref("PushResult"), "One result per record, in order, signed.")}
    push_errors = _errors(400, 401, 413, 415, 422, 503)
    get_errors = _errors(400, 401, 503)
    paths: dict[str, Any] = {
        HEALTH: {
            "get": {
                "operationId": "health",
                "summary": "Liveness (unsigned, no data).",
                "security": [],
                "responses": {"200": _json_body(_ref("Health"), "The server is up.")},
            }
        },
        OPENAPI: {
            "get": {
                "operationId": "openapi",
                "summary": "This document (unsigned).",
                "security": [],
                "responses": {"200": _json_body({"type": "object"}, "OpenAPI 3.1 document.")},
            }
        },
        INFO: {
            "get": {
                "operationId": "info",
                "summary": "Node id and head of the change log.",
                "parameters": _signed(),
                "responses": {
                    "200": _json_body(_ref("PeerInfo"), "Who this node is, signed."),
                    **_errors(400, 401),
                },
            }
        },
        STATUS: {
            "get": {
                "operationId": "status",
                "summary": "Sync status: peers, cursors, lag, pending conflicts; no secrets.",
                "parameters": _signed("Peer"),
                "responses": {
                    "200": _json_body(_ref("Status"), "The status, signed."),
                    **_errors(400, 401, 404),
                },
            }
        },
        CHANGES: {
            "get": {
                "operationId": "pullChanges",
                "summary": "The change feed: latest states changed after a cursor, in order.",
                "parameters": _signed("Since", "Limit", "Kinds", "Requester"),
                "responses": {**page_ok, **get_errors},
            },
            "post": {
                "operationId": "pushChanges",
                "summary": "Apply a batch; per item: applied, known, conflict or rejected.",
                "parameters": _signed("Sender"),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("PushRequest")}},
                },
                "responses": {**push_ok, **push_errors},
            },
        },
    }
    for path, kind in VIEWS.items():
        name = path.rsplit("/", 1)[1]
        camel = "".join(part.title() for part in name.split("_"))
        paths[path] = {
            "get": {
                "operationId": f"get{camel}",
                "summary": f"Records of kind {kind} changed after a cursor (tombstones too).",
                "parameters": _signed("Since", "Limit"),
                "responses": {**page_ok, **get_errors},
            },
            "post": {
                "operationId": f"push{camel}",
                "summary": f"Apply a batch of {kind} records (other kinds: 422 wrong_kind).",
                "parameters": _signed("Sender"),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("PushRequest")}},
                },
                "responses": {**push_ok, **push_errors},
            },
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "NEONPAY sync",
            "version": __version__,
            "description": "The protocol between NEONPAY nodes; see docs/protocol.md for "
            "the signed string, cursor rules and a worked exchange.",
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(limits),
            "parameters": _parameters(limits),
            "securitySchemes": {
                "webhookSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": SIGNATURE_HEADER,
                    "description": "Standard Webhooks style HMAC-SHA256 signature with "
                    f"{ID_HEADER} and {TIMESTAMP_HEADER}; see docs/protocol.md.",
                }
            },
        },
        "security": [{"webhookSignature": []}],
    }
