"""The client side of Cacheyard's admin call: a SigV4-signed JSON POST."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cacheyard.cli.credentials import KeyPair


def post_fault(
    endpoint: str,
    region: str,
    pair: KeyPair,
    action: str,
    cache_cluster_id: str,
    node_id: str,
) -> tuple[int, dict[str, Any]]:
    body = json.dumps(
        {"Action": action, "CacheClusterId": cache_cluster_id, "CacheNodeId": node_id}
    ).encode()
    request = AWSRequest(
        method="POST",
        url=f"{endpoint}/_cacheyard/faults",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    credentials = Credentials(pair.access_key_id, pair.secret_access_key)
    SigV4Auth(credentials, "elasticache", region).add_auth(request)
    prepared = request.prepare()
    http = urllib.request.Request(
        prepared.url, data=body, headers=dict(prepared.headers), method="POST"
    )
    try:
        with urllib.request.urlopen(http, timeout=30) as response:
            return int(response.status), dict(json.loads(response.read()))
    except urllib.error.HTTPError as error:
        return int(error.code), dict(json.loads(error.read()))
