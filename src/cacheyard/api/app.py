"""The HTTP edge: one ASGI app, the whole request chain visible in one place.

body → route by the service the signature is scoped to (``elasticache``,
``iam``, ``sts``) → SigV4 check → parse by that service's botocore model →
authorization by the caller's policies → handler → serialize by the model.
Every failure becomes the XML error AWS would send; anything unexpected is
logged and answered as ``InternalFailure`` without leaking details.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cacheyard.api import sigv4
from cacheyard.api.authorization import Authorizer
from cacheyard.api.handlers import HANDLERS, Context
from cacheyard.api.iam import IAM_HANDLERS, STS_HANDLERS, IamContext, changes_principals
from cacheyard.api.principals import Directory, Principal
from cacheyard.api.protocol import QueryProtocol
from cacheyard.controller.faults import FaultInjector
from cacheyard.domain import faults

log = logging.getLogger(__name__)

XML = "text/xml"
# IAM is global: SDKs sign it for us-east-1 unless given an endpoint, then for their region.
GLOBAL_REGION = "us-east-1"

Params = dict[str, Any]


@dataclass(frozen=True)
class _Service:
    protocol: QueryProtocol
    regions: frozenset[str]  # the credential scopes it accepts
    call: Callable[[Principal, str, Params], Awaitable[Params]]

    @property
    def name(self) -> str:
        name: str = self.protocol.service_model.service_name
        return name


class Api:
    """ElastiCache, the IAM subset and STS on one endpoint."""

    def __init__(self, ctx: Context, directory: Directory, injector: FaultInjector) -> None:
        self._ctx = ctx
        self._directory = directory
        self._injector = injector
        self._iam_ctx = IamContext(ctx.store, ctx.clock, ctx.account)
        self._authorizer = Authorizer(directory.user, ctx.region, ctx.account)
        anywhere = frozenset({ctx.region, GLOBAL_REGION})
        self._services = {
            "elasticache": _Service(
                QueryProtocol("elasticache"), frozenset({ctx.region}), self._elasticache
            ),
            "iam": _Service(QueryProtocol("iam"), anywhere, self._iam),
            "sts": _Service(QueryProtocol("sts"), anywhere, self._sts),
        }
        self._elasticache_service = self._services["elasticache"]

    async def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        service = self._elasticache_service
        try:
            body = await request.body()
            signed = _signed(request, body)
            service = self._services.get(sigv4.claimed_service(signed) or "", service)
            caller = self._authenticate(signed, service)
            form = dict(parse_qsl(request.url.query, keep_blank_values=True))
            form.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            parsed = service.protocol.parse(form)
            self._authorizer.check(caller, service.name, parsed.operation, parsed.params)
            result = await service.call(caller, parsed.operation, parsed.params)
            payload = service.protocol.serialize_result(parsed.operation, result, request_id)
            return Response(payload, media_type=XML, headers={"x-amzn-RequestId": request_id})
        except faults.Fault as fault:
            return self._error(service.protocol, fault, request_id)
        except UnicodeDecodeError:
            malformed = faults.MalformedQueryString("The body is not UTF-8.")
            return self._error(service.protocol, malformed, request_id)
        except Exception:
            log.exception("request %s failed", request_id)
            failure = faults.InternalFailure("The request processing failed.")
            return self._error(service.protocol, failure, request_id)

    def _authenticate(self, signed: sigv4.SignedRequest, service: _Service) -> Principal:
        caller = sigv4.verify(
            signed,
            self._directory.secret_for,
            self._ctx.clock.now(),
            service=service.name,
            regions=service.regions,
        )
        principal = self._directory.principal(caller.access_key_id)
        if principal is None:  # the key went away while the request was checked
            raise faults.InvalidClientTokenId(sigv4.BAD_TOKEN)
        return principal

    async def _elasticache(self, caller: Principal, operation: str, params: Params) -> Params:
        handler = HANDLERS.get(operation)
        if handler is None:
            raise _not_implemented(operation)
        return await handler(self._ctx, params)

    async def _iam(self, caller: Principal, operation: str, params: Params) -> Params:
        handler = IAM_HANDLERS.get(operation)
        if handler is None:
            raise _not_implemented(operation)
        result = await handler(self._iam_ctx, caller, params)
        if changes_principals(operation):
            await self._directory.refresh()
        return result

    async def _sts(self, caller: Principal, operation: str, params: Params) -> Params:
        handler = STS_HANDLERS.get(operation)
        if handler is None:
            raise _not_implemented(operation)
        return await handler(self._iam_ctx, caller, params)

    async def inject_fault(self, request: Request) -> Response:
        """Cacheyard's admin call (not an AWS one): ``POST /_cacheyard/faults`` with JSON
        ``{"Action": "kill|pause|resume|isolate|heal", "CacheClusterId": ..., "CacheNodeId": ...}``,
        signed like every other call, allowed by ``cacheyard:InjectFault`` on the cluster."""
        try:
            body = await request.body()
            caller = self._authenticate(_signed(request, body), self._elasticache_service)
            try:
                payload = json.loads(body)
                action, cluster_id = str(payload["Action"]), str(payload["CacheClusterId"])
            except (ValueError, KeyError, TypeError):
                raise faults.MissingParameter(
                    "The body must be JSON with Action and CacheClusterId."
                ) from None
            self._authorizer.check(
                caller, "cacheyard", "InjectFault", {"CacheClusterId": cluster_id}
            )
            done = await self._injector.inject(
                action, cluster_id, str(payload.get("CacheNodeId", "0001"))
            )
            return JSONResponse({"Done": done})
        except faults.Fault as fault:
            status, _ = self._elasticache_service.protocol.serialize_error(fault, "")
            code = fault.code if isinstance(fault, faults.CommonFault) else fault.shape_name
            return JSONResponse({"Error": {"Code": code, "Message": fault.message}}, status)

    @staticmethod
    def _error(protocol: QueryProtocol, fault: faults.Fault, request_id: str) -> Response:
        status, payload = protocol.serialize_error(fault, request_id)
        return Response(
            payload, status_code=status, media_type=XML, headers={"x-amzn-RequestId": request_id}
        )


def _signed(request: Request, body: bytes) -> sigv4.SignedRequest:
    return sigv4.SignedRequest(
        method=request.method,
        path=request.scope["raw_path"].decode(),
        query_string=request.url.query,
        headers=dict(request.headers),
        body=body,
    )


def _not_implemented(operation: str) -> faults.NotImplementedOperation:
    return faults.NotImplementedOperation(f"Cacheyard does not implement {operation} yet.")


def create_app(api: Api) -> Starlette:
    return Starlette(
        routes=[
            Route("/", api.handle, methods=["GET", "POST"]),
            Route("/_cacheyard/faults", api.inject_fault, methods=["POST"]),
        ]
    )
