"""A small JSON Schema (draft-07) validator for the feed schemas Amazon publishes.

The sandbox is stdlib only, so it cannot use the `jsonschema` package. Rather than hand-code
the feed rules a second time (and drift from Amazon's files), it loads the official schema
files from `schemas/` at run time and checks documents against them with the subset of
draft-07 those files use: type, enum, const, required, properties, additionalProperties,
items, min/maxItems, minLength, minimum/maximum, minProperties, oneOf/anyOf/allOf, boolean
schemas and local `$ref`s. A schema using any other validation keyword is refused when it is
loaded, so a newer schema file cannot be half-checked without anyone noticing.
"""
from __future__ import annotations

import functools
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

SCHEMA_DIRECTORY = Path(__file__).resolve().parent / "schemas"

# Keywords that only describe; they never make a document invalid.
ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "examples", "example", "default", "format", "definitions"}
)
VALIDATORS = frozenset(
    {
        "type",
        "enum",
        "const",
        "required",
        "properties",
        "additionalProperties",
        "items",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minProperties",
        "oneOf",
        "anyOf",
        "allOf",
        "$ref",
    }
)


class UnsupportedSchema(ValueError):
    """The schema uses a keyword this validator does not implement."""


def _type_matches(value: Any, expected: str) -> bool:
    # bool is an int in Python, never a JSON number; Decimal is how documents parse floats.
    if expected == "object":
        return isinstance(value, dict)
    if expected == "array":
        return isinstance(value, list)
    if expected == "string":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "null":
        return value is None
    if isinstance(value, bool):
        return False
    if expected == "integer":
        return isinstance(value, int) or (isinstance(value, (float, Decimal)) and value == int(value))
    if expected == "number":
        return isinstance(value, (int, float, Decimal))
    raise UnsupportedSchema(f"unknown type {expected!r}")


def _json_equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    return bool(left == right)


def _pointer(path: str, key: str | int) -> str:
    return f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"


class Validator:
    """Checks documents against one schema; `errors(document)` lists what is wrong."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.root = schema
        self._check_supported(schema)

    def _check_supported(self, schema: Any) -> None:
        if isinstance(schema, bool):
            return
        if not isinstance(schema, dict):
            raise UnsupportedSchema(f"a schema must be an object or a boolean, got {schema!r}")
        for keyword, value in schema.items():
            if keyword not in VALIDATORS and keyword not in ANNOTATIONS:
                raise UnsupportedSchema(f"keyword {keyword!r} is not supported")
            if keyword in ("properties", "definitions"):
                for child in value.values():
                    self._check_supported(child)
            elif keyword in ("items", "additionalProperties") and not isinstance(value, bool):
                self._check_supported(value)
            elif keyword in ("oneOf", "anyOf", "allOf"):
                for child in value:
                    self._check_supported(child)
            elif keyword == "$ref" and not str(value).startswith("#/"):
                raise UnsupportedSchema(f"only local $refs are supported, got {value!r}")

    def errors(self, document: Any, schema: Any = None, path: str = "") -> list[str]:
        """Every violation as `"<JSON pointer>: <what is wrong>"`; empty when valid."""
        return self._errors(document, self.root if schema is None else schema, path)

    def _resolve(self, reference: str) -> Any:
        node: Any = self.root
        for part in reference[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def _errors(self, value: Any, schema: Any, path: str) -> list[str]:
        where = path or "/"
        if schema is True:
            return []
        if schema is False:
            return [f"{where}: is not allowed here"]
        if "$ref" in schema:
            return self._errors(value, self._resolve(schema["$ref"]), path)

        expected = schema.get("type")
        if expected is not None:
            types = expected if isinstance(expected, list) else [expected]
            if not any(_type_matches(value, name) for name in types):
                # Nothing else can be checked sensibly against the wrong type.
                return [f"{where}: must be of type {' or '.join(types)}, got {_describe(value)}"]

        found: list[str] = []
        if "enum" in schema and not any(_json_equal(value, option) for option in schema["enum"]):
            found.append(f"{where}: must be one of {', '.join(json.dumps(option) for option in schema['enum'])}")
        if "const" in schema and not _json_equal(value, schema["const"]):
            found.append(f"{where}: must be {json.dumps(schema['const'])}")
        if isinstance(value, str):
            if "minLength" in schema and len(value) < schema["minLength"]:
                found.append(f"{where}: must have at least {schema['minLength']} character(s)")
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                found.append(f"{where}: must have at most {schema['maxLength']} character(s)")
        if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
            if "minimum" in schema and value < schema["minimum"]:
                found.append(f"{where}: must be >= {schema['minimum']}")
            if "maximum" in schema and value > schema["maximum"]:
                found.append(f"{where}: must be <= {schema['maximum']}")
        if isinstance(value, list):
            found += self._array_errors(value, schema, path)
        if isinstance(value, dict):
            found += self._object_errors(value, schema, path)
        for child in schema.get("allOf", ()):
            found += self._errors(value, child, path)
        if "anyOf" in schema:
            branches = [self._errors(value, child, path) for child in schema["anyOf"]]
            if all(branches):
                found += min(branches, key=len)
        if "oneOf" in schema:
            found += self._one_of_errors(value, schema["oneOf"], path)
        return found

    def _array_errors(self, value: list[Any], schema: dict[str, Any], path: str) -> list[str]:
        where = path or "/"
        found: list[str] = []
        if "minItems" in schema and len(value) < schema["minItems"]:
            found.append(f"{where}: must have at least {schema['minItems']} item(s)")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            found.append(f"{where}: must have at most {schema['maxItems']} item(s), got {len(value)}")
        if "items" in schema:
            for index, item in enumerate(value):
                found += self._errors(item, schema["items"], _pointer(path, index))
        return found

    def _object_errors(self, value: dict[str, Any], schema: dict[str, Any], path: str) -> list[str]:
        where = path or "/"
        found: list[str] = []
        for name in schema.get("required", ()):
            if name not in value:
                found.append(f"{_pointer(path, name)}: is required")
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            found.append(f"{where}: must have at least {schema['minProperties']} propert(ies)")
        properties = schema.get("properties", {})
        additional = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                found += self._errors(item, properties[name], _pointer(path, name))
            elif additional is not True:
                found += self._errors(item, additional, _pointer(path, name))
        return found

    def _one_of_errors(self, value: Any, branches: list[Any], path: str) -> list[str]:
        results = [self._errors(value, branch, path) for branch in branches]
        matching = sum(1 for errors in results if not errors)
        if matching == 1:
            return []
        if matching > 1:
            return [f"{path or '/'}: matches more than one of the allowed shapes"]
        # Report the branch meant for this value: the one whose `const` properties it matches
        # (for a feed message, the branch of its operationType names the fields that operation
        # needs or forbids); failing that, the branch that came closest.
        meant = [errors for branch, errors in zip(branches, results) if self._discriminators_match(value, branch)]
        return meant[0] if len(meant) == 1 else min(results, key=len)

    @staticmethod
    def _discriminators_match(value: Any, branch: Any) -> bool:
        if not isinstance(branch, dict) or not isinstance(value, dict):
            return False
        constants = {
            name: spec["const"]
            for name, spec in branch.get("properties", {}).items()
            if isinstance(spec, dict) and "const" in spec
        }
        return bool(constants) and all(_json_equal(value.get(name), constant) for name, constant in constants.items())


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


@functools.cache
def load(file_name: str) -> dict[str, Any]:
    """An official schema file from `schemas/`, parsed once per process."""
    with (SCHEMA_DIRECTORY / file_name).open(encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


@functools.cache
def validator(file_name: str) -> Validator:
    return Validator(load(file_name))
