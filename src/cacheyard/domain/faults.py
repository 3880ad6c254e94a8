"""Every error the service answers with, one class per AWS fault.

Each class is named exactly as the error shape in botocore's ElastiCache model;
the API layer looks the code and HTTP status up in the model by that name, so
they can never drift from what boto3 expects. Errors that are not in the model
(AWS's common errors such as ``MissingParameter``) are :class:`CommonFault`
subclasses that carry their own code and status.
"""

from __future__ import annotations

from typing import ClassVar


class Fault(Exception):
    """A request that AWS would refuse; the message is what the caller sees."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def shape_name(self) -> str:
        return type(self).__name__


class CommonFault(Fault):
    """An error of the Query protocol itself, not named in the service model."""

    code: ClassVar[str]
    status: ClassVar[int] = 400


class MissingParameter(CommonFault):
    code = "MissingParameter"


class MissingAction(CommonFault):
    code = "MissingAction"


class InvalidAction(CommonFault):
    code = "InvalidAction"


class MalformedQueryString(CommonFault):
    code = "MalformedQueryString"
    status = 404


class NotImplementedOperation(CommonFault):
    """An operation of the model that Cacheyard does not implement yet."""

    code = "NotImplemented"
    status = 501


class MissingAuthenticationToken(CommonFault):
    code = "MissingAuthenticationToken"
    status = 403


class IncompleteSignature(CommonFault):
    code = "IncompleteSignature"


class InvalidClientTokenId(CommonFault):
    code = "InvalidClientTokenId"
    status = 403


class SignatureDoesNotMatch(CommonFault):
    code = "SignatureDoesNotMatch"
    status = 403


class RequestExpired(CommonFault):
    code = "RequestExpired"


class InternalFailure(CommonFault):
    code = "InternalFailure"
    status = 500


# Faults of the ElastiCache model (code and status come from the model).


class InvalidParameterValueException(Fault):
    pass


class InvalidParameterCombinationException(Fault):
    pass


class CacheClusterAlreadyExistsFault(Fault):
    pass


class CacheClusterNotFoundFault(Fault):
    pass


class InvalidCacheClusterStateFault(Fault):
    pass


class NodeQuotaForClusterExceededFault(Fault):
    pass


class InsufficientCacheClusterCapacityFault(Fault):
    pass


class CacheSubnetGroupAlreadyExistsFault(Fault):
    pass


class CacheSubnetGroupNotFoundFault(Fault):
    pass


class CacheSubnetGroupInUse(Fault):
    pass


class CacheSubnetQuotaExceededFault(Fault):
    pass


class InvalidSubnet(Fault):
    pass


class SubnetInUse(Fault):
    pass


class CacheParameterGroupNotFoundFault(Fault):
    pass


class ReplicationGroupNotFoundFault(Fault):
    pass


class ReplicationGroupAlreadyExistsFault(Fault):
    pass


class InvalidReplicationGroupStateFault(Fault):
    pass


class TestFailoverNotAvailableFault(Fault):
    __test__ = False  # not a pytest test class, whatever its name says


class NodeGroupNotFoundFault(Fault):
    pass


class InvalidARNFault(Fault):
    pass


class TagNotFoundFault(Fault):
    pass


class TagQuotaPerResourceExceeded(Fault):
    pass


class CacheParameterGroupAlreadyExistsFault(Fault):
    pass


class CacheParameterGroupQuotaExceededFault(Fault):
    pass


class InvalidCacheParameterGroupStateFault(Fault):
    pass


class SnapshotAlreadyExistsFault(Fault):
    pass


class SnapshotNotFoundFault(Fault):
    pass


class SnapshotQuotaExceededFault(Fault):
    pass


class SnapshotFeatureNotSupportedFault(Fault):
    pass


class InvalidSnapshotStateFault(Fault):
    pass


# Authorization and the IAM API.


class AccessDenied(CommonFault):
    """A caller whose policies do not allow the call (not in the models: every service uses it)."""

    code = "AccessDenied"
    status = 403


class ValidationError(CommonFault):
    """IAM's and STS' answer to a value their model refuses."""

    code = "ValidationError"


# Faults of the IAM model: looked up in the model of the service that answers.


class NoSuchEntityException(Fault):
    pass


class EntityAlreadyExistsException(Fault):
    pass


class MalformedPolicyDocumentException(Fault):
    pass


class DeleteConflictException(Fault):
    pass


class LimitExceededException(Fault):
    pass


class InvalidInputException(Fault):
    pass


# RBAC users and user groups.


class UserAlreadyExistsFault(Fault):
    pass


class UserNotFoundFault(Fault):
    pass


class UserQuotaExceededFault(Fault):
    pass


class DuplicateUserNameFault(Fault):
    pass


class InvalidUserStateFault(Fault):
    pass


class DefaultUserRequired(Fault):
    pass


class DefaultUserAssociatedToUserGroupFault(Fault):
    pass


class UserGroupAlreadyExistsFault(Fault):
    pass


class UserGroupNotFoundFault(Fault):
    pass


class UserGroupQuotaExceededFault(Fault):
    pass


class InvalidUserGroupStateFault(Fault):
    pass
