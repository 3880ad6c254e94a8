"""Write a fault as the Query protocol's ``ErrorResponse``, code and status from the model.

A fault named after one of the model's error shapes takes that shape's code and
HTTP status, so they cannot drift from what boto3 expects; a protocol-level
:class:`CommonFault` carries its own. The service is the model's: the same
fault class answers with IAM's code in IAM and ElastiCache's in ElastiCache.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, SubElement

from botocore.model import NoShapeFoundError

from cacheyard.domain.faults import CommonFault, Fault

from .serializing import document
from .wire import namespace

# What services without an error shape of that name (IAM, STS) answer instead:
# the protocol refuses a value with ElastiCache's fault, they with ValidationError.
_ELSEWHERE = {"InvalidParameterValueException": ("ValidationError", 400)}


def error_document(service_model: Any, fault: Fault, request_id: str) -> tuple[int, bytes]:
    """The HTTP status and body answering ``fault``."""
    code, status, sender = _describe(service_model, fault)
    root = Element("ErrorResponse", xmlns=namespace(service_model))
    error = SubElement(root, "Error")
    SubElement(error, "Type").text = "Sender" if sender else "Receiver"
    SubElement(error, "Code").text = code
    SubElement(error, "Message").text = fault.message
    SubElement(root, "RequestId").text = request_id
    return status, document(root)


def _describe(service_model: Any, fault: Fault) -> tuple[str, int, bool]:
    """(code, HTTP status, whether the caller is at fault)."""
    if isinstance(fault, CommonFault):
        return fault.code, fault.status, fault.status < 500
    try:
        shape = service_model.shape_for(fault.shape_name)
    except NoShapeFoundError:
        shape = None
    if shape is None and fault.shape_name in _ELSEWHERE:
        return (*_ELSEWHERE[fault.shape_name], True)
    if shape is None or not shape.metadata.get("exception"):
        raise TypeError(f"{fault.shape_name} is not an error of {service_model.service_name}")
    error = shape.metadata.get("error", {})
    status: int = error.get("httpStatusCode", 400)
    code: str = error.get("code", fault.shape_name)
    return code, status, bool(error.get("senderFault", status < 500))
