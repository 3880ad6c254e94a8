"""Create/Describe/Modify/DeleteCacheSubnetGroup."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address
from typing import Any

from cacheyard.api.handlers.context import Context
from cacheyard.api.handlers.paging import page
from cacheyard.api.handlers.resources import new_record, subnet_group_view, tags_param
from cacheyard.controller import keys
from cacheyard.domain import faults, identifiers, statuses, subnet_groups
from cacheyard.domain.codec import dump, load
from cacheyard.domain.network import DEFAULT_SUBNET_GROUP
from cacheyard.domain.subnet_groups import SubnetGroupSpec
from cacheyard.store import Record, Transaction

Params = dict[str, Any]


async def _get(tx: Transaction, name: str) -> Record:
    record = await tx.get(keys.CACHE_SUBNET_GROUP, name)
    if record is None:
        raise faults.CacheSubnetGroupNotFoundFault(f"Cache subnet group {name} not found.")
    return record


async def create(ctx: Context, params: Params) -> Params:
    name = identifiers.subnet_group_name(params["CacheSubnetGroupName"])
    spec = subnet_groups.plan(
        name, params["CacheSubnetGroupDescription"], params["SubnetIds"], ctx.network
    )
    tags = tags_param(params)
    async with ctx.store.transaction() as tx:
        if await tx.get(keys.CACHE_SUBNET_GROUP, name) is not None:
            raise faults.CacheSubnetGroupAlreadyExistsFault(
                f"Cache subnet group {name} already exists."
            )
        record = new_record(
            ctx,
            keys.CACHE_SUBNET_GROUP,
            "subnetgroup",
            name,
            spec,
            ctx.clock.now(),
            status=statuses.SUBNET_ACTIVE,
        )
        await tx.insert(record)
        await tx.set_tags(record.arn, tags)
    return {"CacheSubnetGroup": subnet_group_view(ctx, record)}


async def describe(ctx: Context, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        if params.get("CacheSubnetGroupName") is not None:
            records = [await _get(tx, params["CacheSubnetGroupName"].lower())]
        else:
            records = await tx.all(keys.CACHE_SUBNET_GROUP)
    views = [subnet_group_view(ctx, r) for r in records]
    return page(views, [r.id for r in records], "CacheSubnetGroups", params)


async def modify(ctx: Context, params: Params) -> Params:
    name = params["CacheSubnetGroupName"].lower()
    async with ctx.store.transaction() as tx:
        record = await _get(tx, name)
        spec = load(SubnetGroupSpec, record.spec)
        if params.get("CacheSubnetGroupDescription") is not None:
            spec = replace(spec, description=params["CacheSubnetGroupDescription"])
        if params.get("SubnetIds") is not None:
            new = subnet_groups.plan(name, spec.description, params["SubnetIds"], ctx.network)
            await _check_subnets_unused(ctx, tx, name, set(spec.subnet_ids) - set(new.subnet_ids))
            spec = new
        record = await tx.update_spec(keys.CACHE_SUBNET_GROUP, name, dump(spec), record.status)
    return {"CacheSubnetGroup": subnet_group_view(ctx, record)}


async def _check_subnets_unused(
    ctx: Context, tx: Transaction, group: str, removed: set[str]
) -> None:
    networks = [ctx.network.subnet(subnet_id) for subnet_id in removed]
    for cluster in await _clusters_in(tx, group):
        for node in cluster.spec["nodes"]:
            for subnet in networks:
                if ip_address(node["address"]) in subnet.network:
                    raise faults.SubnetInUse(f"The subnet {subnet.subnet_id} is in use.")


async def _clusters_in(tx: Transaction, group: str) -> list[Record]:
    return [r for r in await tx.all(keys.CACHE_CLUSTER) if r.spec.get("subnet_group") == group]


async def delete(ctx: Context, params: Params) -> Params:
    name = params["CacheSubnetGroupName"].lower()
    if name == DEFAULT_SUBNET_GROUP:
        raise faults.InvalidParameterValueException(
            "Cannot delete default cache subnet group 'default'."
        )
    async with ctx.store.transaction() as tx:
        await _get(tx, name)
        if await _clusters_in(tx, name):
            raise faults.CacheSubnetGroupInUse(f"Cache subnet group {name} is in use.")
        await tx.delete(keys.CACHE_SUBNET_GROUP, name)
    return {}
