"""Faults: every model fault names an error shape of botocore's ElastiCache or IAM model."""

from __future__ import annotations

import inspect

import botocore.session
import pytest

from cacheyard.domain import faults

pytestmark = pytest.mark.timeout(30)

MODELS = [botocore.session.get_session().get_service_model(s) for s in ("elasticache", "iam")]


def _subclasses(base: type) -> list[type]:
    return [
        c
        for _, c in inspect.getmembers(faults, inspect.isclass)
        if issubclass(c, base) and c is not base and c.__module__ == faults.__name__
    ]


MODEL_FAULTS = [c for c in _subclasses(faults.Fault) if not issubclass(c, faults.CommonFault)]
COMMON_FAULTS = _subclasses(faults.CommonFault)


def test_there_are_faults_of_both_kinds() -> None:
    assert faults.InvalidParameterValueException in MODEL_FAULTS
    assert faults.MissingParameter in COMMON_FAULTS


@pytest.mark.parametrize("fault", MODEL_FAULTS, ids=lambda c: c.__name__)
def test_model_fault_names_an_error_shape(fault: type[faults.Fault]) -> None:
    (model,) = [m for m in MODELS if fault.__name__ in m.shape_names]
    shape = model.shape_for(fault.__name__)
    error = shape.metadata.get("error")
    assert error, f"{fault.__name__} is not an error shape"
    assert error["code"]
    assert 400 <= error["httpStatusCode"] < 600
    assert fault("m").shape_name == fault.__name__


@pytest.mark.parametrize("fault", COMMON_FAULTS, ids=lambda c: c.__name__)
def test_common_fault_carries_code_and_status(fault: type[faults.CommonFault]) -> None:
    assert isinstance(fault.code, str) and fault.code
    assert 400 <= fault.status < 600


def test_message_is_kept() -> None:
    fault = faults.CacheClusterNotFoundFault("CacheCluster x not found.")
    assert fault.message == "CacheCluster x not found."
    assert str(fault) == "CacheCluster x not found."
