"""Add/Remove/ListTagsForResource, on every resource by ARN."""

from __future__ import annotations

from typing import Any

from cacheyard.api.handlers import sasl_links
from cacheyard.api.handlers.context import Context
from cacheyard.api.handlers.resources import MAX_TAGS, resource_for_arn, tags_param
from cacheyard.domain import faults

Params = dict[str, Any]


def _tag_list(tags: list[tuple[str, str]]) -> Params:
    return {"TagList": [{"Key": k, "Value": v} for k, v in tags]}


async def add(ctx: Context, params: Params) -> Params:
    new = tags_param(params)
    async with ctx.store.transaction() as tx:
        record = await resource_for_arn(ctx, tx, params["ResourceName"])
        existing = dict(await tx.tags(record.arn))
        if len(existing | new) > MAX_TAGS:
            raise faults.TagQuotaPerResourceExceeded(
                f"A resource can have at most {MAX_TAGS} tags."
            )
        changed = await sasl_links.retagged(tx, record, new)
        await tx.set_tags(record.arn, new)
        answer = _tag_list(await tx.tags(record.arn))
    if changed:
        ctx.controller.enqueue(record.kind, record.id)
    return answer


async def remove(ctx: Context, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        record = await resource_for_arn(ctx, tx, params["ResourceName"])
        existing = dict(await tx.tags(record.arn))
        missing = [k for k in params["TagKeys"] if k not in existing]
        if missing:
            raise faults.TagNotFoundFault(f"Tag {missing[0]} not found on {record.arn}.")
        sasl_links.check_removal(record, params["TagKeys"])
        await tx.remove_tags(record.arn, params["TagKeys"])
        return _tag_list(await tx.tags(record.arn))


async def list_tags(ctx: Context, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        record = await resource_for_arn(ctx, tx, params["ResourceName"])
        return _tag_list(await tx.tags(record.arn))
