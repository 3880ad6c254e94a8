"""``python -m examples.shop``: the shop against a Cacheyard replication group."""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn

from cacheyard.client.connect import CacheEndpoints

from .app import create_app


def _endpoints(args: argparse.Namespace) -> CacheEndpoints:
    if args.primary:
        return CacheEndpoints.from_addresses(args.primary, args.reader)
    import boto3  # only for looking the endpoints up

    client: Any = boto3.client(
        "elasticache", endpoint_url=args.endpoint_url, region_name=args.region
    )
    described = client.describe_replication_groups(ReplicationGroupId=args.replication_group_id)
    return CacheEndpoints.from_replication_group(described)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.shop", description=__doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--primary", help="primary endpoint, host[:port]")
    where.add_argument("--replication-group-id", help="look the endpoints up with boto3")
    parser.add_argument("--reader", help="reader endpoint, host[:port] (with --primary)")
    parser.add_argument("--endpoint-url", default="http://127.0.0.1:8510", help="Cacheyard API")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8600)
    parser.add_argument("--database", default="shop.sqlite3", help="SQLite file (seeded)")
    args = parser.parse_args(argv)
    endpoints = _endpoints(args)
    print(
        f"shop on http://{args.host}:{args.port}/ (cache primary "
        f"{endpoints.primary_host}:{endpoints.primary_port}, reader "
        f"{':'.join(map(str, endpoints.reader))})",
        flush=True,
    )
    uvicorn.run(create_app(endpoints, args.database), host=args.host, port=args.port,
                log_level="warning")  # fmt: skip


if __name__ == "__main__":
    main()
