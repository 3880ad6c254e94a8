"""The AWS Query protocol (form requests, XML answers), generated from botocore's model."""

from .query import ParsedRequest, QueryProtocol

__all__ = ["ParsedRequest", "QueryProtocol"]
