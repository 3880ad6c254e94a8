"""Cache parameter groups: create, describe, modify, reset, delete; engine defaults.

A change to a group in use is written with the group and the caches that use
it are enqueued: their reconcilers apply immediate parameters live and report
requires-reboot ones as pending until the node restarts.
"""

from __future__ import annotations

from typing import Any

from cacheyard.api.handlers.context import Context
from cacheyard.api.handlers.paging import page
from cacheyard.api.handlers.resources import new_record, tags_param
from cacheyard.controller import keys
from cacheyard.domain import faults, parameter_groups
from cacheyard.domain.codec import dump, load
from cacheyard.domain.parameter_groups import ParameterGroupSpec
from cacheyard.domain.parameters import ParameterFamily, ParameterInfo
from cacheyard.store import Record, Transaction

Params = dict[str, Any]

ACTIVE = "available"
SOURCES = ("user", "system", "engine-default")


async def get_group(tx: Transaction, name: str) -> Record:
    record = await tx.get(keys.CACHE_PARAMETER_GROUP, name.lower())
    if record is None:
        raise faults.CacheParameterGroupNotFoundFault(f"CacheParameterGroup {name} not found.")
    return record


async def ensure_default_groups(ctx: Context) -> None:
    """Every installed family has its default group, as every AWS account does."""
    async with ctx.store.transaction() as tx:
        for family in ctx.parameters.families.values():
            spec = parameter_groups.default_group(family)
            if await tx.get(keys.CACHE_PARAMETER_GROUP, spec.name) is None:
                await tx.insert(_new_record(ctx, spec))


def _new_record(ctx: Context, spec: ParameterGroupSpec) -> Record:
    return new_record(
        ctx,
        keys.CACHE_PARAMETER_GROUP,
        "parametergroup",
        spec.name,
        spec,
        ctx.clock.now(),
        status=ACTIVE,
    )


def group_view(record: Record) -> Params:
    spec = load(ParameterGroupSpec, record.spec)
    return {
        "CacheParameterGroupName": spec.name,
        "CacheParameterGroupFamily": spec.family,
        "Description": spec.description,
        "IsGlobal": False,
        "ARN": record.arn,
    }


def parameter_view(info: ParameterInfo, value: str, source: str) -> Params:
    view: Params = {
        "ParameterName": info.name,
        "ParameterValue": value,
        "Description": info.description,
        "Source": source,
        "DataType": info.data_type,
        "IsModifiable": info.modifiable,
        "MinimumEngineVersion": info.minimum_engine_version,
        "ChangeType": info.change_type,
    }
    if info.allowed_values is not None:
        view["AllowedValues"] = info.allowed_values
    return view


async def create(ctx: Context, params: Params) -> Params:
    spec = parameter_groups.plan_create(
        ctx.parameters,
        params["CacheParameterGroupName"],
        params["CacheParameterGroupFamily"],
        params["Description"],
    )
    tags = tags_param(params)
    async with ctx.store.transaction() as tx:
        existing = await tx.all(keys.CACHE_PARAMETER_GROUP)
        if any(r.id == spec.name for r in existing):
            raise faults.CacheParameterGroupAlreadyExistsFault(
                f"Parameter group {spec.name} already exists."
            )
        if len(existing) >= parameter_groups.MAX_GROUPS:
            raise faults.CacheParameterGroupQuotaExceededFault(
                f"At most {parameter_groups.MAX_GROUPS} parameter groups are allowed."
            )
        record = _new_record(ctx, spec)
        await tx.insert(record)
        await tx.set_tags(record.arn, tags)
    return {"CacheParameterGroup": group_view(record)}


async def describe(ctx: Context, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        if params.get("CacheParameterGroupName") is not None:
            records = [await get_group(tx, params["CacheParameterGroupName"])]
        else:
            records = await tx.all(keys.CACHE_PARAMETER_GROUP)
    return page(
        [group_view(r) for r in records], [r.id for r in records], "CacheParameterGroups", params
    )


async def describe_parameters(ctx: Context, params: Params) -> Params:
    source = params.get("Source")
    if source is not None and source not in SOURCES:
        raise faults.InvalidParameterValueException(
            f"Invalid value {source} for Source. Valid values are: {', '.join(SOURCES)}."
        )
    async with ctx.store.transaction() as tx:
        spec = load(
            ParameterGroupSpec, (await get_group(tx, params["CacheParameterGroupName"])).spec
        )
    family = ctx.parameters.family(spec.family)
    views = []
    for info in family.parameters:
        changed = info.name in spec.values
        origin = "user" if changed else "system"
        if source is not None and (source == "user") != changed:
            continue
        views.append(parameter_view(info, spec.values.get(info.name, info.default), origin))
    result = page(views, [v["ParameterName"] for v in views], "Parameters", params)
    result["CacheNodeTypeSpecificParameters"] = []
    return result


async def describe_engine_defaults(ctx: Context, params: Params) -> Params:
    family = ctx.parameters.family(params["CacheParameterGroupFamily"])
    views = [parameter_view(info, info.default, "system") for info in family.parameters]
    result = page(views, [v["ParameterName"] for v in views], "Parameters", params)
    return {
        "EngineDefaults": {
            "CacheParameterGroupFamily": family.family,
            "CacheNodeTypeSpecificParameters": [],
            **result,
        }
    }


def _name_values(params: Params) -> list[tuple[str, str]]:
    pairs = []
    for item in params.get("ParameterNameValues") or []:
        name = item.get("ParameterName")
        if not name:
            raise faults.InvalidParameterValueException("ParameterName must not be empty.")
        pairs.append((name, item.get("ParameterValue") or ""))
    return pairs


async def modify(ctx: Context, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        record = await get_group(tx, params["CacheParameterGroupName"])
        spec = load(ParameterGroupSpec, record.spec)
        family = ctx.parameters.family(spec.family)
        changed = parameter_groups.plan_modify(spec, family, _name_values(params))
        await _save(ctx, tx, record, changed)
    return {"CacheParameterGroupName": record.id}


async def reset(ctx: Context, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        record = await get_group(tx, params["CacheParameterGroupName"])
        spec = load(ParameterGroupSpec, record.spec)
        family = ctx.parameters.family(spec.family)
        names = [name for name, _ in _name_values(params)]
        changed = parameter_groups.plan_reset(
            spec, family, bool(params.get("ResetAllParameters")), names
        )
        await _save(ctx, tx, record, changed)
    return {"CacheParameterGroupName": record.id}


async def _save(ctx: Context, tx: Transaction, record: Record, spec: ParameterGroupSpec) -> None:
    await tx.update_spec(keys.CACHE_PARAMETER_GROUP, record.id, dump(spec), record.status)
    for kind, resource_id in await users_of(tx, record.id):
        ctx.controller.enqueue(kind, resource_id)


async def users_of(tx: Transaction, name: str) -> list[tuple[str, str]]:
    """The standalone clusters and the replication groups that use a parameter group."""
    users = [
        (keys.CACHE_CLUSTER, r.id)
        for r in await tx.all(keys.CACHE_CLUSTER)
        if r.spec["parameter_group"] == name and not r.spec.get("replication_group_id")
    ]
    users += [
        (keys.REPLICATION_GROUP, r.id)
        for r in await tx.all(keys.REPLICATION_GROUP)
        if r.spec["parameter_group"] == name
    ]
    return users


async def delete(ctx: Context, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        record = await get_group(tx, params["CacheParameterGroupName"])
        if load(ParameterGroupSpec, record.spec).is_default:
            raise faults.InvalidCacheParameterGroupStateFault(
                f"The default parameter group {record.id} cannot be deleted."
            )
        users = await users_of(tx, record.id)
        if users:
            raise faults.InvalidCacheParameterGroupStateFault(
                f"Parameter group {record.id} is used by {users[0][1]} and cannot be deleted."
            )
        await tx.delete(keys.CACHE_PARAMETER_GROUP, record.id)
    return {}


async def resolve_for(
    ctx: Context, tx: Transaction, name: str | None, family: str
) -> tuple[str, ParameterFamily]:
    """The parameter group a cache asks for (the family's default when none), checked
    to exist and to belong to the cache's engine family."""
    group_name = name or f"{parameter_groups.DEFAULT_PREFIX}{family}"
    spec = load(ParameterGroupSpec, (await get_group(tx, group_name)).spec)
    if spec.family != family:
        raise faults.InvalidParameterCombinationException(
            f"Parameter group {spec.name} is of family {spec.family}, but the cache needs "
            f"one of family {family}."
        )
    return spec.name, ctx.parameters.family(family)
