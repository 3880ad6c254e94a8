"""DescribeCacheEngineVersions: the engines actually installed on this host."""

from __future__ import annotations

from typing import Any

from cacheyard.api.handlers.context import Context
from cacheyard.api.handlers.paging import page

Params = dict[str, Any]


async def describe(ctx: Context, params: Params) -> Params:
    versions = [
        v
        for v in ctx.catalog.versions
        if params.get("Engine") in (None, v.engine)
        and (params.get("EngineVersion") is None or v.accepts(params["EngineVersion"]))
        and params.get("CacheParameterGroupFamily") in (None, v.family)
    ]
    views = [
        {
            "Engine": v.engine,
            "EngineVersion": v.version,
            "CacheParameterGroupFamily": v.family,
            "CacheEngineDescription": v.description,
            "CacheEngineVersionDescription": v.version_description,
        }
        for v in versions
    ]
    return page(views, [f"{v.engine}/{v.version}" for v in versions], "CacheEngineVersions", params)
