"""STS GetCallerIdentity: who signed the request (Terraform asks first)."""

from __future__ import annotations

from cacheyard.api.iam.context import IamContext, Params
from cacheyard.api.principals import Principal


async def get_caller_identity(ctx: IamContext, caller: Principal, params: Params) -> Params:
    return {"UserId": caller.user.user_id, "Account": ctx.account, "Arn": caller.arn}
