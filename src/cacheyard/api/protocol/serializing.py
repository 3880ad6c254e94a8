"""Write an operation's result as Query-protocol XML by walking its output shape.

Results are python values keyed by member name. Anything the shape does not
describe (an unknown key, a value of the wrong type) is a bug in the caller and
raises TypeError rather than reaching a client.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

from .wire import entry_names, is_flattened, item_name, member_name, namespace


def document(root: Element) -> bytes:
    """The UTF-8 bytes of a response document."""
    data: bytes = tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def result_document(
    service_model: Any, operation: str, result: Mapping[str, Any], request_id: str
) -> bytes:
    """``<{Op}Response><{Op}Result>...</{Op}Result><ResponseMetadata>...``."""
    output = service_model.operation_model(operation).output_shape
    root = Element(f"{operation}Response", xmlns=namespace(service_model))
    if output is None:
        if result:
            raise TypeError(f"{operation} has no output, got {sorted(result)}")
    else:
        wrapper = output.serialization.get("resultWrapper")
        _structure(SubElement(root, wrapper) if wrapper else root, output, result)
    metadata = SubElement(root, "ResponseMetadata")
    SubElement(metadata, "RequestId").text = request_id
    return document(root)


def _structure(parent: Element, shape: Any, value: Any) -> None:
    _expect(value, Mapping, shape)
    unknown = set(value) - set(shape.members)
    if unknown:
        raise TypeError(f"{shape.name} has no member(s) {sorted(unknown)}")
    for name, member in shape.members.items():
        item = value.get(name)
        if item is None:
            continue
        wire = member_name(member, name)
        if is_flattened(member):
            _flattened(parent, wire, member, item)
        else:
            _value(SubElement(parent, wire), member, item)


def _flattened(parent: Element, wire: str, shape: Any, value: Any) -> None:
    """A flattened list or map: one ``wire`` element per item, straight in the parent."""
    if shape.type_name == "list":
        _expect(value, (list, tuple), shape)
        for item in value:
            _value(SubElement(parent, wire), shape.member, item)
    else:
        _expect(value, Mapping, shape)
        for key, item in value.items():
            _entry(SubElement(parent, wire), shape, key, item)


def _value(element: Element, shape: Any, value: Any) -> None:
    kind = shape.type_name
    if kind == "structure":
        _structure(element, shape, value)
    elif kind == "list":
        _expect(value, (list, tuple), shape)
        for item in value:
            _value(SubElement(element, item_name(shape)), shape.member, item)
    elif kind == "map":
        _expect(value, Mapping, shape)
        for key, item in value.items():
            _entry(SubElement(element, "entry"), shape, key, item)
    else:
        element.text = _scalar(shape, value)


def _entry(element: Element, shape: Any, key: Any, value: Any) -> None:
    key_name, value_name = entry_names(shape)
    _value(SubElement(element, key_name), shape.key, key)
    _value(SubElement(element, value_name), shape.value, value)


def _scalar(shape: Any, value: Any) -> str:
    kind = shape.type_name
    if kind == "string":
        _expect(value, str, shape)
        return str.__str__(value)  # the plain text of str subclasses such as enums
    if kind == "boolean":
        _expect(value, bool, shape)
        return "true" if value else "false"
    if kind in ("integer", "long"):
        _expect(value, int, shape)
        return str(int(value))
    if kind in ("float", "double"):
        _expect(value, (int, float), shape)
        return _number(float(value))
    if kind == "timestamp":
        _expect(value, datetime, shape)
        if value.tzinfo is None:
            raise TypeError(f"{shape.name} needs a timezone-aware datetime, got {value!r}")
        utc = value.astimezone(UTC)
        return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"
    if kind == "blob":
        _expect(value, bytes, shape)
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{shape.name}: cannot serialize shapes of type {kind}")


def _number(value: float) -> str:
    """Floats as AWS writes them, including its spellings of the non-finite ones."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _expect(value: Any, kinds: type | tuple[type, ...], shape: Any) -> None:
    """Refuse a value of the wrong python type; bools are never numbers."""
    if not isinstance(value, kinds) or (isinstance(value, bool) and shape.type_name != "boolean"):
        raise TypeError(f"{shape.name} cannot hold {type(value).__name__} {value!r}")
