"""Names that parameters and elements carry on the wire, read from the botocore model.

Parsing and serializing must agree on every name, and both must agree with what
botocore writes and reads, so the rules live here once.
"""

from __future__ import annotations

from typing import Any


def is_flattened(shape: Any) -> bool:
    """A flattened list or map repeats its items in the parent, with no wrapping element."""
    return bool(shape.serialization.get("flattened"))


def member_name(shape: Any, name: str) -> str:
    """The wire name of a structure member: its ``locationName``, else its member name.

    A flattened list goes by its item's ``locationName`` when the model gives one.
    """
    if shape.type_name == "list" and is_flattened(shape):
        item: str | None = shape.member.serialization.get("name")
        if item:
            return item
    wire: str = shape.serialization.get("name", name)
    return wire


def item_name(shape: Any) -> str:
    """The element or parameter segment of one list item (``member`` unless the model names it)."""
    name: str = shape.member.serialization.get("name", "member")
    return name


def entry_names(shape: Any) -> tuple[str, str]:
    """The names of a map entry's key and value (``key``/``value`` unless the model names them)."""
    key: str = shape.key.serialization.get("name", "key")
    value: str = shape.value.serialization.get("name", "value")
    return key, value


def namespace(service_model: Any) -> str:
    """The XML namespace of responses, as the model declares it or AWS derives it."""
    metadata = service_model.metadata
    declared: str | None = metadata.get("xmlNamespace")
    if declared:
        return declared
    return f"https://{metadata['endpointPrefix']}.amazonaws.com/doc/{metadata['apiVersion']}/"


def join(path: str, name: str) -> str:
    """The dotted parameter name of ``name`` under ``path`` (``Tags.Tag.1.Key``)."""
    return f"{path}.{name}" if path else name
