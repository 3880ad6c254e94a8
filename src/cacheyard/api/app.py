"""The HTTP edge: one ASGI app, the whole request chain visible in one place.

body → SigV4 check → (authorization policies plug in here) → parse by the
botocore model → handler → serialize by the model. Every failure becomes the
XML error AWS would send; anything unexpected is logged and answered as
``InternalFailure`` without leaking details.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cacheyard.api import sigv4
from cacheyard.api.handlers import HANDLERS, Context
from cacheyard.api.protocol import QueryProtocol
from cacheyard.controller.faults import FaultInjector
from cacheyard.domain import faults

log = logging.getLogger(__name__)

XML = "text/xml"


class ElastiCacheApi:
    def __init__(
        self,
        ctx: Context,
        secret_for: Callable[[str], str | None],
        injector: FaultInjector,
    ) -> None:
        self._ctx = ctx
        self._secret_for = secret_for
        self._protocol = QueryProtocol("elasticache")
        self._injector = injector

    async def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            body = await request.body()
            await self._authenticate(request, body)
            form = dict(parse_qsl(request.url.query, keep_blank_values=True))
            form.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            parsed = self._protocol.parse(form)
            handler = HANDLERS.get(parsed.operation)
            if handler is None:
                raise faults.NotImplementedOperation(
                    f"Cacheyard does not implement {parsed.operation} yet."
                )
            result = await handler(self._ctx, parsed.params)
            payload = self._protocol.serialize_result(parsed.operation, result, request_id)
            return Response(payload, media_type=XML, headers={"x-amzn-RequestId": request_id})
        except faults.Fault as fault:
            return self._error(fault, request_id)
        except UnicodeDecodeError:
            return self._error(faults.MalformedQueryString("The body is not UTF-8."), request_id)
        except Exception:
            log.exception("request %s failed", request_id)
            return self._error(faults.InternalFailure("The request processing failed."), request_id)

    async def _authenticate(self, request: Request, body: bytes) -> sigv4.Caller:
        signed = sigv4.SignedRequest(
            method=request.method,
            path=request.scope["raw_path"].decode(),
            query_string=request.url.query,
            headers=dict(request.headers),
            body=body,
        )
        return sigv4.verify(
            signed,
            self._secret_for,
            self._ctx.clock.now(),
            service="elasticache",
            region=self._ctx.region,
        )

    async def inject_fault(self, request: Request) -> Response:
        """Cacheyard's admin call (not an AWS one): ``POST /_cacheyard/faults`` with JSON
        ``{"Action": "kill|pause|resume|isolate|heal", "CacheClusterId": ..., "CacheNodeId": ...}``,
        signed like every other call."""
        try:
            body = await request.body()
            await self._authenticate(request, body)
            try:
                payload = json.loads(body)
                action, cluster_id = str(payload["Action"]), str(payload["CacheClusterId"])
            except (ValueError, KeyError, TypeError):
                raise faults.MissingParameter(
                    "The body must be JSON with Action and CacheClusterId."
                ) from None
            done = await self._injector.inject(
                action, cluster_id, str(payload.get("CacheNodeId", "0001"))
            )
            return JSONResponse({"Done": done})
        except faults.Fault as fault:
            status, _ = self._protocol.serialize_error(fault, "")
            code = fault.code if isinstance(fault, faults.CommonFault) else fault.shape_name
            return JSONResponse({"Error": {"Code": code, "Message": fault.message}}, status)

    def _error(self, fault: faults.Fault, request_id: str) -> Response:
        status, payload = self._protocol.serialize_error(fault, request_id)
        return Response(
            payload, status_code=status, media_type=XML, headers={"x-amzn-RequestId": request_id}
        )


def create_app(api: ElastiCacheApi) -> Starlette:
    return Starlette(
        routes=[
            Route("/", api.handle, methods=["GET", "POST"]),
            Route("/_cacheyard/faults", api.inject_fault, methods=["POST"]),
        ]
    )
