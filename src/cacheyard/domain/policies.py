"""IAM identity-based policies: reading a document and deciding one request.

Evaluation is AWS's for identity-based policies: a request is denied unless a
statement allows it, and any statement that denies it wins. Actions match
case-insensitively, resources case-sensitively; ``*`` matches any run of
characters (``:`` and ``/`` included) and ``?`` one character.

What Cacheyard cannot evaluate is refused with ``MalformedPolicyDocument``
rather than ignored, because ignoring part of a policy changes what it
allows: ``Condition`` blocks and policy variables (``${aws:username}``).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cacheyard.domain.faults import MalformedPolicyDocumentException

VERSIONS = ("2012-10-17", "2008-10-17")
_POLICY_KEYS = {"Version", "Id", "Statement"}
_STATEMENT_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource"}
_ACTION = re.compile(r"[A-Za-z0-9-]+:[A-Za-z0-9*?]+")


class Decision(enum.Enum):
    ALLOW = "allow"
    IMPLICIT_DENY = "implicit deny"
    EXPLICIT_DENY = "explicit deny"


@dataclass(frozen=True)
class _Patterns:
    """Action or resource patterns; ``negated`` for NotAction / NotResource."""

    patterns: tuple[re.Pattern[str], ...]
    negated: bool

    def match(self, value: str) -> bool:
        found = any(p.fullmatch(value) for p in self.patterns)
        return found != self.negated


@dataclass(frozen=True)
class Statement:
    allow: bool
    actions: _Patterns
    resources: _Patterns

    def applies(self, action: str, resource: str) -> bool:
        return self.actions.match(action) and self.resources.match(resource)


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]


def parse(document: str) -> Policy:
    """The policy of a JSON document, or ``MalformedPolicyDocument`` saying what is wrong."""
    try:
        body = json.loads(document)
    except ValueError:
        raise _malformed("Syntax errors in policy.") from None
    if not isinstance(body, dict) or "Statement" not in body:
        raise _malformed("Syntax errors in policy.")
    _known_keys(body, _POLICY_KEYS)
    version = body.get("Version", VERSIONS[1])
    if version not in VERSIONS:
        raise _malformed("The policy failed legacy parsing")
    statements = body["Statement"]
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list):
        raise _malformed("Syntax errors in policy.")
    sids = [s.get("Sid") for s in statements if isinstance(s, dict) and "Sid" in s]
    if len(sids) != len(set(map(str, sids))):
        raise _malformed("Statement IDs (SID) in a single policy must be unique.")
    return Policy(tuple(_statement(s, version) for s in statements))


def evaluate(policies: Iterable[Policy], action: str, resource: str) -> Decision:
    """Default deny; an applying Deny wins over every Allow."""
    decision = Decision.IMPLICIT_DENY
    for policy in policies:
        for statement in policy.statements:
            if statement.applies(action, resource):
                if not statement.allow:
                    return Decision.EXPLICIT_DENY
                decision = Decision.ALLOW
    return decision


def denial(user_arn: str, action: str, resource: str, decision: Decision) -> str:
    """AWS's AccessDenied message for an identity-based decision."""
    because = (
        "with an explicit deny in an identity-based policy"
        if decision is Decision.EXPLICIT_DENY
        else f"because no identity-based policy allows the {action} action"
    )
    return (
        f"User: {user_arn} is not authorized to perform: {action} on resource: {resource} {because}"
    )


def _statement(raw: Any, version: str) -> Statement:
    if not isinstance(raw, dict):
        raise _malformed("Syntax errors in policy.")
    if "Principal" in raw or "NotPrincipal" in raw:
        raise _malformed("Policy document should not specify a principal.")
    if "Condition" in raw:
        raise _malformed(
            "Cacheyard does not evaluate policy conditions; remove the Condition element."
        )
    _known_keys(raw, _STATEMENT_KEYS)
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise _malformed(f"Invalid effect: {effect}" if effect else "Missing required field Effect")
    actions = _pair(raw, "Action", "Policy statement must contain actions.")
    resources = _pair(raw, "Resource", "Policy statement must contain resources.")
    for action in actions.values:
        if action != "*" and not _ACTION.fullmatch(action):
            raise _malformed(
                f"Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. "
                f"Got {action!r}."
            )
    for resource in resources.values:
        if resource != "*" and not (resource.startswith("arn:") and resource.count(":") >= 5):
            raise _malformed(f'Resource {resource} must be in ARN format or "*".')
        if version == VERSIONS[0] and "${" in resource:
            raise _malformed(
                "Cacheyard does not evaluate policy variables such as ${aws:username}."
            )
    return Statement(
        allow=effect == "Allow",
        actions=_Patterns(tuple(_glob(a, re.IGNORECASE) for a in actions.values), actions.negated),
        resources=_Patterns(tuple(_glob(r, 0) for r in resources.values), resources.negated),
    )


@dataclass(frozen=True)
class _Values:
    values: Sequence[str]
    negated: bool


def _pair(raw: dict[str, Any], name: str, missing: str) -> _Values:
    """``Action`` or ``NotAction`` (``Resource`` or ``NotResource``): exactly one, a string
    or a non-empty list of strings."""
    present = [key for key in (name, f"Not{name}") if key in raw]
    if len(present) != 1:
        raise _malformed(missing)
    value = raw[present[0]]
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise _malformed(missing)
    return _Values(values, present[0] != name)


def _known_keys(raw: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise _malformed(f"Policy document contains unknown element(s): {', '.join(unknown)}")


def _glob(pattern: str, flags: int) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), flags | re.DOTALL)


def _malformed(message: str) -> MalformedPolicyDocumentException:
    return MalformedPolicyDocumentException(message)
