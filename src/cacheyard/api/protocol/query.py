"""The Query protocol of one AWS service, driven entirely by botocore's model of it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.model import ServiceModel

from cacheyard.domain.faults import Fault, InvalidAction, MissingAction

from .errors import error_document
from .parsing import parse_input
from .serializing import result_document


@dataclass(frozen=True)
class ParsedRequest:
    """One call: the operation and its parameters as boto3 would have passed them."""

    operation: str
    params: dict[str, Any]


class QueryProtocol:
    """Parse requests and serialize results and errors for ``service_name``.

    Works for any Query-protocol service botocore models (ElastiCache, IAM, STS).
    """

    def __init__(self, service_name: str = "elasticache") -> None:
        self.service_model: ServiceModel = botocore.session.get_session().get_service_model(
            service_name
        )
        if self.service_model.protocol != "query":
            raise ValueError(f"{service_name} does not speak the Query protocol")
        self._operations = frozenset(self.service_model.operation_names)

    def operation_names(self) -> list[str]:
        """Every operation of the model, sorted."""
        return sorted(self._operations)

    def parse(self, form: Mapping[str, str]) -> ParsedRequest:
        """Read one request from its form fields (body and query string together).

        A missing ``Version`` is accepted; a different one is refused the way AWS
        refuses it, as an operation it cannot find for that version.
        """
        action = form.get("Action")
        if not action:
            raise MissingAction("The request must contain the parameter Action")
        api_version = self.service_model.api_version
        version = form.get("Version", api_version)
        if action not in self._operations or version != api_version:
            raise InvalidAction(f"Could not find operation {action} for version {version}")
        shape = self.service_model.operation_model(action).input_shape
        params = parse_input(shape, form) if shape is not None else {}
        return ParsedRequest(operation=action, params=params)

    def serialize_result(self, operation: str, result: Mapping[str, Any], request_id: str) -> bytes:
        """The XML body answering a successful ``operation``."""
        return result_document(self.service_model, operation, result, request_id)

    def serialize_error(self, fault: Fault, request_id: str) -> tuple[int, bytes]:
        """The HTTP status and XML body answering ``fault``."""
        return error_document(self.service_model, fault, request_id)
