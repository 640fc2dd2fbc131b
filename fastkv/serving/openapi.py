"""The OpenAPI 3 document of ``fastkv serve``, served at /openapi.json.

Written out by hand next to the server so that every status the server can
answer is here; tests run schemathesis against it.
"""

from __future__ import annotations

from typing import Any

from fastkv import _core

_JSON = "application/json"


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


_COMMON = {
    "401": _error("missing or wrong bearer token (only when the server has one)"),
    "503": _error("the server is shutting down"),
}

_KEY_PARAM = {
    "name": "key",
    "in": "path",
    "required": True,
    "description": f"1 to {_core.KEY_MAX_CHARS} characters, percent-encoded as one path segment",
    "schema": {"type": "string", "minLength": 1, "maxLength": _core.KEY_MAX_CHARS},
}


_KEY_ONLY = {"type": "object", "required": ["key"], "properties": {"key": {"type": "string"}}}

_TTL_LEFT = {"type": "object", "required": ["key", "ttl"],
             "properties": {"key": {"type": "string"},
                            "ttl": {"type": "number", "nullable": True, "minimum": 0}}}


_KEYS = {"type": "array", "items": {"type": "string"}}
_TTL = {"type": "integer", "nullable": True, "description": "seconds; null: no expiry"}

_POST_ERRORS = {
    "400": _error("a body, key, value or TTL refused (InvalidKeyError, InvalidValueError, "
                  "InvalidTTLError, RequestError, TransactionError); nothing written"),
    "411": _error("no Content-Length"),
    "413": _error("the body is over twice the store's max_transaction_bytes, or a value "
                  "is over the value limit"),
    "415": _error("the body is not sent as application/json"),
    "507": _error("StoreFullError: the changes do not fit under the file cap; nothing "
                  "written"),
    **_COMMON,
}


def _post(op_id: str, summary: str, body: dict[str, Any], answer: dict[str, Any],
          **errors: dict[str, Any]) -> dict[str, Any]:
    return {"post": {
        "operationId": op_id,
        "summary": summary,
        "requestBody": {"required": True, "content": {_JSON: {"schema": body}}},
        "responses": {"200": _ok("done", answer), **_POST_ERRORS, **errors},
    }}


def _batch_paths() -> dict[str, Any]:
    op = {"type": "object", "required": ["op", "key"], "properties": {
        "op": {"type": "string", "enum": ["create", "put", "touch", "delete"]},
        "key": {"type": "string"},
        "value": {"$ref": "#/components/schemas/Value"},
        "ttl": _TTL}}
    return {
        "/batch/get": _post(
            "get_many", "The live keys among keys, with their values (as of one moment)",
            {"type": "object", "required": ["keys"], "properties": {"keys": _KEYS}},
            {"type": "object", "required": ["values"], "properties": {
                "values": {"type": "object",
                           "additionalProperties": {"$ref": "#/components/schemas/Value"}}}}),
        "/batch/put": _post(
            "put_many", "put of every item, as one atomic group",
            {"type": "object", "required": ["items"], "properties": {
                "items": {"type": "object",
                          "additionalProperties": {"$ref": "#/components/schemas/Value"}},
                "ttl": _TTL}},
            {"type": "object", "required": ["written"],
             "properties": {"written": {"type": "integer"}}}),
        "/batch/delete": _post(
            "delete_many", "Delete the live keys among keys, as one atomic group",
            {"type": "object", "required": ["keys"], "properties": {"keys": _KEYS}},
            {"type": "object", "required": ["deleted"],
             "properties": {"deleted": {"type": "integer"}}}),
        "/transaction": _post(
            "transaction",
            "Operations applied as one transaction if every expected key still holds the "
            "value given (null: not live); else 409 ConflictError. Any refusal writes "
            "nothing.",
            {"type": "object", "properties": {
                "expect": {"type": "object", "additionalProperties": {
                    "allOf": [{"$ref": "#/components/schemas/Value"}], "nullable": True}},
                "ops": {"type": "array", "items": op}}},
            {"type": "object", "required": ["committed"],
             "properties": {"committed": {"type": "integer"}}},
            **{"404": _error("KeyNotFoundError: a touch or delete of a key that is not "
                             "live; nothing written"),
               "409": _error("ConflictError: an expected key changed; or KeyExistsError: "
                             "a create of a live key; nothing written")}),
    }


def document(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "fastkv",
            "version": version,
            "description": "One fastkv store served over HTTP: JSON objects under short "
                           "keys, each with an optional time-to-live.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string",
                                  "description": "the fastkv.errors class, e.g. KeyNotFoundError"},
                        "message": {"type": "string"},
                    },
                },
                "Value": {
                    "type": "object",
                    "description": f"any JSON object; compact encoding at most "
                                   f"{_core.VALUE_MAX_BYTES:,} bytes",
                    "additionalProperties": True,
                },
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/keys/{key}": {
                "parameters": [_KEY_PARAM],
                "put": {
                    "operationId": "create",
                    "summary": "Store a value under a key that is not live (create), or with "
                               "replace=true under any key, replacing a live key's value and "
                               "expiry in one step (put)",
                    "parameters": [{
                        "name": "ttl", "in": "query", "required": False,
                        "description": "seconds until the key expires",
                        "schema": {"type": "integer", "minimum": 1,
                                   "maximum": _core.TTL_MAX_SECONDS},
                    }, {
                        "name": "replace", "in": "query", "required": False,
                        "description": "true: create the key or replace its value (put)",
                        "schema": {"type": "boolean", "default": False},
                    }],
                    "requestBody": {"required": True, "content": {
                        _JSON: {"schema": {"$ref": "#/components/schemas/Value"}}}},
                    "responses": {
                        "200": _ok("stored (replace=true)", _KEY_ONLY),
                        "201": _ok("created", _KEY_ONLY),
                        "400": _error("bad key, ttl or value (not a JSON object, not representable)"),
                        "409": _error("the key is live (without replace=true)"),
                        "411": _error("no Content-Length"),
                        "413": _error(f"the body is over {_core.VALUE_MAX_BYTES:,} bytes"),
                        "415": _error("the body is not application/json"),
                        "507": _error("the store file is full"),
                        **_COMMON,
                    },
                },
                "get": {
                    "operationId": "read",
                    "summary": "The value of a live key",
                    "responses": {
                        "200": _ok("the value", {"$ref": "#/components/schemas/Value"}),
                        "400": _error("bad key"),
                        "404": _error("no such key, or it has expired (KeyExpiredError)"),
                        **_COMMON,
                    },
                },
                "delete": {
                    "operationId": "delete",
                    "summary": "Remove a live key",
                    "responses": {
                        "204": {"description": "deleted"},
                        "400": _error("bad key"),
                        "404": _error("no such key, or it has expired (KeyExpiredError)"),
                        **_COMMON,
                    },
                },
            },
            "/keys/{key}/ttl": {
                "parameters": [_KEY_PARAM],
                "get": {
                    "operationId": "ttl",
                    "summary": "Seconds a live key has left, null if it never expires",
                    "responses": {
                        "200": _ok("the time left", _TTL_LEFT),
                        "400": _error("bad key"),
                        "404": _error("no such key, or it has expired (KeyExpiredError)"),
                        **_COMMON,
                    },
                },
                "put": {
                    "operationId": "touch",
                    "summary": "Give a live key a new expiry counted from now (null: none), "
                               "keeping its value",
                    "requestBody": {"required": True, "content": {_JSON: {"schema": {
                        "type": "object", "required": ["ttl"], "additionalProperties": False,
                        "properties": {"ttl": {"type": "integer", "nullable": True,
                                               "minimum": 1,
                                               "maximum": _core.TTL_MAX_SECONDS}},
                    }}}},
                    "responses": {
                        "200": _ok("the new time left", _TTL_LEFT),
                        "400": _error("bad key, ttl or body"),
                        "404": _error("no such key, or it has expired (KeyExpiredError)"),
                        "411": _error("no Content-Length"),
                        "413": _error(f"the body is over {_core.VALUE_MAX_BYTES:,} bytes"),
                        "415": _error("the body is not application/json"),
                        "507": _error("the store file is full"),
                        **_COMMON,
                    },
                },
            },
            "/keys": {
                "get": {
                    "operationId": "keys",
                    "summary": "Live keys: sorted up to a limit, or a walk over all of them",
                    "description": "Without cursor: the live keys (starting with prefix), "
                                   "sorted, at most limit of them. With cursor: one batch of "
                                   "a walk over every live key, in no order; start at 0 and "
                                   "pass each answer's cursor until it is 0. A key live for "
                                   "the whole walk comes exactly once.",
                    "parameters": [
                        {"name": "prefix", "in": "query", "required": False,
                         "schema": {"type": "string"}},
                        {"name": "limit", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 1, "maximum": 100_000,
                                    "default": 1000}},
                        {"name": "cursor", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 0}},
                    ],
                    "responses": {
                        "200": _ok("the keys", {
                            "type": "object", "required": ["keys"],
                            "properties": {
                                "keys": {"type": "array", "items": {"type": "string"}},
                                "truncated": {"type": "boolean",
                                              "description": "more keys matched than limit "
                                                             "(without cursor)"},
                                "cursor": {"type": "integer", "minimum": 0,
                                           "description": "where the walk goes on; 0: done "
                                                          "(with cursor)"},
                            },
                        }),
                        "400": _error("bad limit or cursor"),
                        **_COMMON,
                    },
                },
            },
            "/stats": {
                "get": {
                    "operationId": "stats",
                    "summary": "The store's counters",
                    "responses": {
                        "200": _ok("counters", {
                            "type": "object",
                            "required": ["live_keys", "file_bytes", "path"],
                            "properties": {
                                "live_keys": {"type": "integer"},
                                "file_bytes": {"type": "integer"},
                                "dead_bytes": {"type": "integer"},
                                "path": {"type": "string"},
                            },
                        }),
                        **_COMMON,
                    },
                },
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Whether the server is up",
                    "responses": {
                        "200": _ok("up", {
                            "type": "object", "required": ["status", "version"],
                            "properties": {"status": {"type": "string", "enum": ["ok"]},
                                           "version": {"type": "string"}},
                        }),
                        **_COMMON,
                    },
                },
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {"200": _ok("the document", {"type": "object"}), **_COMMON},
                },
            },
            **_batch_paths(),
        },
    }
