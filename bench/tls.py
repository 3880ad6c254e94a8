"""TLS in transit: redis-benchmark over TLS through Cacheyard, and the cost of AUTH tokens.

Issue 5 asks for redis-benchmark over TLS through Cacheyard against a bare
redis-server with the same TLS settings, in the same run (goal: at least 0.95
of its throughput), and for the cost of IAM-authenticated connections against
password ones.

In the same run on the same machine:

- *Throughput*. Cacheyard: a TLS cache cluster of 1 node (its node endpoint),
  and a TLS replication group of 3 (its primary endpoint; the primary
  replicates to 2 replicas over TLS). Bare: redis-server started by hand with
  a Cacheyard node's configuration and the same TLS directives (``port 0``,
  ``tls-port 6379``, a certificate issued by the service's own CA for its
  address, ``tls-auth-clients no``, ``tls-replication yes``), alone or with 2
  bare TLS replicas (then, like a group member, with ``min-replicas-to-write 1``
  and ``min-replicas-max-lag 2``). Each run is ``redis-benchmark --tls --cacert <CA> -t
  set,get -n 200000 -c 50 -q``, unpipelined and with ``-P 16``, the sides
  alternating which goes first; medians over ``--rounds`` runs.
- *AUTH cost*. Connections per second, each a new TCP connection, a full TLS
  handshake verified against the CA, AUTH (or not) and PING, to a 1-node
  cluster with ``AuthToken`` and one without, and to bare servers with and
  without the same token (the ``default`` user's password, as Cacheyard sets
  it); and to a 1-node TLS replication group whose user group holds a
  ``default`` user with a password, an RBAC password user and an IAM user
  (``AuthenticationMode`` ``iam``), as the password user (``AUTH <user>
  <password>``) and as the IAM user (``AUTH <user> <token>``, the token signed
  with the service's admin key by ``cacheyard.client.iam_token``). Cacheyard
  gives the IAM user the SHA-256 of every token valid now (one per signing
  second of the 15-minute window, per allowed key) as its ACL passwords, so
  Redis compares the token's hash with about a thousand of them instead of
  one or two: the IAM / password ratio on the same node is that cost, and the
  report says how many passwords each user holds (``ACL GETUSER``). The token
  is made once and reused for every connection, as ``IamCredentialProvider``
  does (a new one only when it nears its expiry). Two clients:
  ``redis-benchmark -k 0 -c 50 -t ping_mbulk`` (50 connections at a time,
  AUTH sent in the same write as the PING) and one serial client on Python's
  ``ssl`` (AUTH and PING each waiting for their reply, as client libraries
  do). The servers' CPU time per connection is read from /proc around each
  run.

    .venv/bin/python bench/tls.py --rounds 3
"""

from __future__ import annotations

import argparse
import configparser
import hashlib
import os
import platform
import re
import secrets
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import redis
from bench_helpers import (
    REGION,
    BenchError,
    Service,
    delete_group,
    engine_version,
    free_base,
    in_work_dir,
    median,
    missing_binaries,
    online_replicas,
    poll_until,
    process_in,
    start_redis,
    stop_processes,
)
from botocore.exceptions import ClientError
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from cacheyard.client.iam_token import AwsCredentials, IamCredentialProvider
from cacheyard.engines.certificates import CertificateAuthority

NODE_TYPE = "cache.t3.micro"
MEMORY_MB = 512
PORT = 6379
GOAL_RATIO = 0.95
TESTS = ("SET", "GET")
PIPELINES = (1, 16)
# Bare servers live on 127.<base>.250.0/24, outside every subnet Cacheyard
# allocates from: .1 alone, .2 with the AUTH token, .11-.13 a primary and 2 replicas.
BARE_THIRD_OCTET = 250
BARE_SINGLE = 1
BARE_TOKEN = 2
BARE_GROUP = (11, 12, 13)
READY_TIMEOUT = 60.0
BENCH_TIMEOUT = 300.0
PROBE_TIMEOUT = 1.0
PARTS = ("node", "group", "auth")
SIDES = ("cacheyard", "bare")
CLUSTER_ID = "bench-tls-1"
TOKEN_CLUSTER_ID = "bench-tls-auth"
GROUP_ID = "bench-tls-3"
IAM_GROUP_ID = "bench-tls-iam"
USER_GROUP_ID = "bench-tls-users"
DEFAULT_USER_ID = "bench-tls-default"
PASSWORD_USER = "bench-tls-password"  # user id and user name
IAM_USER = "bench-tls-iam-user"  # user id and user name (the same, as IAM requires)
ACCESS_STRING = "on ~* +@all"
_RESULT = re.compile(r"^([A-Z_]+): ([0-9.]+) requests per second")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Samples:
    cacheyard: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)


@dataclass
class AuthSamples:
    """Connections per second and the server's CPU microseconds per connection."""

    rate: Samples = field(default_factory=Samples)
    cpu: Samples = field(default_factory=Samples)


@dataclass(frozen=True)
class Target:
    """A server to connect to: where, as which user with which token (or password), and
    its process (for its CPU time). ``tokens`` gives the token to use now, when it
    changes over time (an IAM token)."""

    address: str
    token: str | None
    pid: int | None
    user: str | None = None
    tokens: Callable[[], str] | None = None

    def current(self) -> Target:
        """This target with the token to connect with now."""
        return self if self.tokens is None else replace(self, token=self.tokens())


@dataclass
class Results:
    # (scenario label, test, pipeline depth) -> ops/s
    throughput: dict[tuple[str, str, int], Samples] = field(default_factory=dict)
    # (client, auth) -> connections/s and CPU per connection
    auth: dict[tuple[str, str], AuthSamples] = field(default_factory=dict)
    # user -> how many passwords it holds on the IAM group's node, before and after the runs
    passwords: dict[str, list[int]] = field(default_factory=dict)
    # How each scenario's TLS settings compared, printed with the report.
    notes: list[str] = field(default_factory=list)


# -- Clients ------------------------------------------------------------------------------


def tls_client(
    address: str, ca: str, token: str | None = None, user: str | None = None
) -> redis.Redis:
    """A redis-py client that verifies the node against the CA by address; one attempt.
    With ``user``, it authenticates as that user (``AUTH user token``)."""
    return redis.Redis(
        host=address,
        port=PORT,
        ssl=True,
        ssl_ca_certs=ca,
        ssl_cert_reqs="required",
        ssl_check_hostname=True,
        username=user,
        password=token,
        socket_timeout=PROBE_TIMEOUT,
        socket_connect_timeout=PROBE_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


def tls_info(
    address: str, ca: str, section: str, token: str | None = None, user: str | None = None
) -> dict[str, Any]:
    """``INFO section`` over TLS, or {} when the server does not answer (yet) or refuses
    the credentials."""
    client = tls_client(address, ca, token, user)
    try:
        info: dict[str, Any] = client.info(section)
        return info
    except (RedisError, OSError):
        return {}
    finally:
        client.close()


def tls_settings(address: str, ca: str) -> dict[str, str] | None:
    """``CONFIG GET tls-*``, a file or directory as only whether it is set (the paths
    differ by side); None when CONFIG is refused or the server does not answer."""
    client = tls_client(address, ca)
    try:
        found = client.config_get("tls-*")
    except (RedisError, OSError):
        return None
    finally:
        client.close()
    return {
        str(name): ("<set>" if value else "")
        if str(name).endswith(("-file", "-dir"))
        else str(value)
        for name, value in found.items()
    }


def compare_tls(label: str, cacheyard: str, bare: str, ca: str, results: Results) -> None:
    """Note whether both sides run with the same TLS settings."""
    ours, theirs = tls_settings(cacheyard, ca), tls_settings(bare, ca)
    if ours is None or theirs is None:
        results.notes.append(f"{label}: CONFIG GET tls-* refused, TLS settings not compared")
        return
    differences = [
        f"{name} {ours.get(name)!r} / {theirs.get(name)!r}"
        for name in sorted(set(ours) | set(theirs))
        if ours.get(name) != theirs.get(name)
    ]
    if differences:
        results.notes.append(
            f"{label}: TLS settings differ (Cacheyard / bare): {'; '.join(differences)}"
        )
    else:
        results.notes.append(
            f"{label}: same {len(ours)} TLS settings on both sides (CONFIG GET tls-*,"
            " file paths aside)"
        )


def redis_benchmark(
    address: str,
    ca: str,
    tests: str,
    requests: int,
    clients: int,
    *,
    pipeline: int = 1,
    token: str | None = None,
    user: str | None = None,
    reconnect: bool = False,
) -> dict[str, float]:
    """Requests per second per test, as ``redis-benchmark --tls -q`` prints them."""
    argv = [
        "redis-benchmark",
        *("--tls", "--cacert", ca),
        *("-h", address, "-p", str(PORT), "-t", tests),
        *("-n", str(requests), "-c", str(clients), "-q"),
    ]
    if pipeline > 1:
        argv += ["-P", str(pipeline)]
    if reconnect:
        argv += ["-k", "0"]
    shown = " ".join(argv)
    if token is not None:
        if user is not None:
            argv += ["--user", user]
            shown += f" --user {user}"
        argv += ["-a", token]
        shown += " -a <token>"
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=BENCH_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        # redis-benchmark retries forever when it cannot connect.
        raise BenchError(f"{shown} did not finish within {BENCH_TIMEOUT:.0f} s") from exc
    results = {}
    # -q rewrites a progress line with \r; the last state of each line is the result.
    for line in re.split(r"[\r\n]", done.stdout):
        match = _RESULT.match(line.strip())
        if match:
            results[match.group(1)] = float(match.group(2))
    wanted = {test.upper() for test in tests.split(",")}
    if done.returncode != 0 or set(results) != wanted:
        output = (done.stdout.replace("\r", "\n").strip() + "\n" + done.stderr.strip())[-400:]
        raise BenchError(f"{shown} exited with {done.returncode}: {output.strip()}")
    return results


def _command(*words: str) -> bytes:
    encoded = [word.encode() for word in words]
    return b"*%d\r\n" % len(encoded) + b"".join(
        b"$%d\r\n%s\r\n" % (len(word), word) for word in encoded
    )


def _reply(connection: ssl.SSLSocket) -> bytes:
    """One simple-string or error reply (all that AUTH and PING answer)."""
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = connection.recv(256)
        if not chunk:
            raise BenchError(f"connection closed after {data!r}")
        data += chunk
    return data


def serial_connections(target: Target, context: ssl.SSLContext, count: int) -> float:
    """Connections per second of one client that, ``count`` times: connects, completes a
    full TLS handshake (the node verified by address), sends AUTH when it has a token (as
    its user, when it has one) and waits for OK, then PING and waits for PONG, and closes."""
    auth = None
    if target.token is not None:
        user = () if target.user is None else (target.user,)
        auth = _command("AUTH", *user, target.token)
    ping = _command("PING")
    started = time.perf_counter()
    for _ in range(count):
        raw = socket.create_connection((target.address, PORT), timeout=5)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with context.wrap_socket(raw, server_hostname=target.address) as connection:
            if auth is not None:
                connection.sendall(auth)
                if (reply := _reply(connection)) != b"+OK\r\n":
                    raise BenchError(f"AUTH to {target.address} answered {reply!r}")
            connection.sendall(ping)
            if (reply := _reply(connection)) != b"+PONG\r\n":
                raise BenchError(f"PING to {target.address} answered {reply!r}")
    return count / (time.perf_counter() - started)


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process so far, None when unknown or gone."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


# -- Cacheyard's side ---------------------------------------------------------------------


def create_cluster(
    client: Any, data_dir: Path, ca: str, cluster_id: str, token: str | None
) -> Target:
    """A 1-node TLS cluster (with ``AuthToken`` when given), once it serves over TLS."""
    options: dict[str, Any] = {} if token is None else {"AuthToken": token}
    client.create_cache_cluster(
        CacheClusterId=cluster_id,
        Engine="redis",
        CacheNodeType=NODE_TYPE,
        NumCacheNodes=1,
        TransitEncryptionEnabled=True,
        **options,
    )
    endpoint: list[str] = []

    def ready() -> bool:
        found = client.describe_cache_clusters(CacheClusterId=cluster_id, ShowCacheNodeInfo=True)
        cluster = found["CacheClusters"][0]
        if cluster["CacheClusterStatus"] != "available":
            return False
        if not cluster.get("TransitEncryptionEnabled"):
            raise BenchError(f"{cluster_id} is available without TransitEncryptionEnabled")
        address = str(cluster["CacheNodes"][0]["Endpoint"]["Address"])
        if not tls_info(address, ca, "server", token).get("redis_version"):
            return False
        endpoint.append(address)
        return True

    poll_until(ready, READY_TIMEOUT, 0.05, f"creating {cluster_id}")
    pid = process_in(data_dir / "clusters" / cluster_id / "nodes" / "0001")
    if pid is None:
        print(f"warning: no process found for {cluster_id}: no CPU figures", file=sys.stderr)
    return Target(endpoint[-1], token, pid)


def delete_cluster(client: Any, cluster_id: str) -> None:
    client.delete_cache_cluster(CacheClusterId=cluster_id)

    def gone() -> bool:
        try:
            client.describe_cache_clusters(CacheClusterId=cluster_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "CacheClusterNotFound":
                return True
            raise
        return False

    poll_until(gone, READY_TIMEOUT, 0.05, f"deleting {cluster_id}")


def create_group(client: Any, ca: str, group_id: str, nodes: int) -> str:
    """A TLS group with automatic failover, once its primary serves with every replica
    online; its primary endpoint."""
    client.create_replication_group(
        ReplicationGroupId=group_id,
        ReplicationGroupDescription="tls bench",
        CacheNodeType=NODE_TYPE,
        Engine="redis",
        NumCacheClusters=nodes,
        AutomaticFailoverEnabled=True,
        MultiAZEnabled=True,
        TransitEncryptionEnabled=True,
    )
    endpoint: list[str] = []

    def ready() -> bool:
        groups = client.describe_replication_groups(ReplicationGroupId=group_id)
        group = groups["ReplicationGroups"][0]
        if group["Status"] != "available":
            return False
        address = str(group["NodeGroups"][0]["PrimaryEndpoint"]["Address"])
        info = tls_info(address, ca, "replication")
        if info.get("role") != "master" or online_replicas(info) != nodes - 1:
            return False
        endpoint.append(address)
        return True

    poll_until(ready, READY_TIMEOUT, 0.05, f"creating {group_id}")
    return endpoint[-1]


def admin_credentials(data_dir: Path) -> AwsCredentials:
    """The service's admin key pair (AdministratorAccess: it may connect as IAM users)."""
    credentials = configparser.ConfigParser()
    credentials.read(data_dir / "credentials")
    profile = credentials["default"]
    return AwsCredentials(profile["aws_access_key_id"], profile["aws_secret_access_key"])


@dataclass(frozen=True)
class IamGroup:
    """The IAM group's node as its password user and as its IAM user, and the ``default``
    user's password (to read the node's ACL)."""

    password: Target
    iam: Target
    default_password: str


def create_iam_group(client: Any, data_dir: Path, ca: str, credentials: AwsCredentials) -> IamGroup:
    """A 1-node TLS replication group whose user group holds a ``default`` user with a
    password, an RBAC password user and an IAM user; once both users authenticate."""
    default_password, password = secrets.token_hex(16), secrets.token_hex(16)
    client.create_user(
        UserId=DEFAULT_USER_ID,
        UserName="default",
        Engine="redis",
        AccessString=ACCESS_STRING,
        Passwords=[default_password],
    )
    client.create_user(
        UserId=PASSWORD_USER,
        UserName=PASSWORD_USER,
        Engine="redis",
        AccessString=ACCESS_STRING,
        Passwords=[password],
    )
    client.create_user(
        UserId=IAM_USER,
        UserName=IAM_USER,
        Engine="redis",
        AccessString=ACCESS_STRING,
        AuthenticationMode={"Type": "iam"},
    )
    client.create_user_group(
        UserGroupId=USER_GROUP_ID,
        Engine="redis",
        UserIds=[DEFAULT_USER_ID, PASSWORD_USER, IAM_USER],
    )
    client.create_replication_group(
        ReplicationGroupId=IAM_GROUP_ID,
        ReplicationGroupDescription="tls bench, IAM",
        CacheNodeType=NODE_TYPE,
        Engine="redis",
        NumCacheClusters=1,
        TransitEncryptionEnabled=True,
        UserGroupIds=[USER_GROUP_ID],
    )
    found: list[tuple[str, str, str]] = []  # (primary endpoint, member cluster, region)

    def available() -> bool:
        groups = client.describe_replication_groups(ReplicationGroupId=IAM_GROUP_ID)
        group = groups["ReplicationGroups"][0]
        if group["Status"] != "available":
            return False
        user_group = client.describe_user_groups(UserGroupId=USER_GROUP_ID)["UserGroups"][0]
        if user_group["Status"] != "active":  # until the node holds the group's users
            return False
        address = str(group["NodeGroups"][0]["PrimaryEndpoint"]["Address"])
        region = str(group["ARN"]).split(":")[3]
        found.append((address, str(group["MemberClusters"][0]), region))
        return True

    poll_until(available, READY_TIMEOUT, 0.05, f"creating {IAM_GROUP_ID}")
    address, member, region = found[-1]
    pid = process_in(data_dir / "clusters" / member / "nodes" / "0001")
    if pid is None:
        print(f"warning: no process found for {member}: no CPU figures", file=sys.stderr)
    provider = IamCredentialProvider(IAM_GROUP_ID, IAM_USER, region, credentials)
    group = IamGroup(
        Target(address, password, pid, PASSWORD_USER),
        Target(address, None, pid, IAM_USER, provider.token),
        default_password,
    )

    def authenticates() -> bool:
        # The controller installs the token hashes in a pass after the users.
        for target in (group.password, group.iam.current()):
            if not tls_info(address, ca, "server", target.token, target.user).get("redis_version"):
                return False
        return True

    poll_until(authenticates, READY_TIMEOUT, 0.05, f"IAM authentication on {IAM_GROUP_ID}")
    return group


def held_passwords(address: str, ca: str, default_password: str, user: str) -> int:
    """How many passwords ``user`` holds on the node: ``ACL GETUSER`` as ``default``."""
    client = tls_client(address, ca, default_password)
    try:
        found = client.acl_getuser(user)
    except (RedisError, OSError) as exc:
        raise BenchError(f"ACL GETUSER {user} on {address}: {exc!r}") from exc
    finally:
        client.close()
    passwords = found.get("passwords", []) if found else None
    if not isinstance(passwords, list):
        raise BenchError(f"ACL GETUSER {user} on {address} answered {found!r}")
    return len(passwords)


# -- The bare side ------------------------------------------------------------------------


class Bare:
    """Hand-started TLS redis-servers with certificates from the service's CA."""

    def __init__(self, work_dir: Path, address_base: int, authority: CertificateAuthority) -> None:
        self.work_dir = work_dir
        self.address_base = address_base
        self.authority = authority
        self.ca = str(authority.cert_path)

    def address(self, last_octet: int) -> str:
        return f"127.{self.address_base}.{BARE_THIRD_OCTET}.{last_octet}"

    def start(
        self,
        last_octet: int,
        processes: list[subprocess.Popen[bytes]],
        *,
        primary: str | None = None,
        token: str | None = None,
        in_group: bool = False,
    ) -> Target:
        """One server with a Cacheyard node's configuration and TLS directives, a replica of
        ``primary`` when given, with ``token`` as the default user's password when given;
        ``in_group``: with what a member of a group with automatic failover also gets."""
        address = self.address(last_octet)
        node_dir = self.work_dir / "bare" / address
        issued = self.authority.issue(node_dir, f"bare-{address}", [address])
        # What engines/launch.py gives a node with TransitEncryptionEnabled.
        extra = {
            "port": "0",
            "tls-port": str(PORT),
            "tls-cert-file": str(issued.cert),
            "tls-key-file": str(issued.key),
            "tls-ca-cert-file": self.ca,
            "tls-auth-clients": "no",
            "tls-replication": "yes",
        }
        if primary is not None:
            extra["replicaof"] = f"{primary} {PORT}"
        if in_group:
            # An isolated primary refuses writes (fencing, controller/replication_groups.py).
            extra["min-replicas-to-write"] = "1"
            extra["min-replicas-max-lag"] = "2"
        if token is not None:
            # As Cacheyard sets an AuthToken: the default user's password, by its SHA-256.
            digest = hashlib.sha256(token.encode()).hexdigest()
            extra["user"] = f"default on resetpass #{digest} ~* &* +@all"
        process = start_redis(address, PORT, node_dir, MEMORY_MB, extra)
        processes.append(process)
        return Target(address, token, process.pid)

    def wait_ready(
        self,
        primary: Target,
        replicas: int,
        processes: list[subprocess.Popen[bytes]],
    ) -> None:
        def ready() -> bool:
            for process in processes:
                if process.poll() is not None:
                    raise BenchError(f"{process.args!r} exited with {process.returncode}")
            info = tls_info(primary.address, self.ca, "replication", primary.token)
            return info.get("role") == "master" and online_replicas(info) == replicas

        poll_until(ready, READY_TIMEOUT, 0.02, f"bare TLS redis on {primary.address}")


# -- Measuring ----------------------------------------------------------------------------


def alternate(items: list[Any], index: int) -> list[Any]:
    """``items`` in order on even rounds, reversed on odd ones."""
    return items if index % 2 == 0 else items[::-1]


def measure_throughput(
    label: str,
    sides: dict[str, str],
    ca: str,
    args: argparse.Namespace,
    results: Results,
) -> None:
    for index in range(args.warmup + args.rounds):
        warmup = index < args.warmup
        for pipeline in PIPELINES:
            measured = {
                name: redis_benchmark(
                    sides[name],
                    ca,
                    "set,get",
                    args.requests,
                    args.clients,
                    pipeline=pipeline,
                )
                for name in alternate(list(SIDES), index)
            }
            for test in TESTS:
                samples = results.throughput.setdefault((label, test, pipeline), Samples())
                if not warmup:
                    samples.cacheyard.append(measured["cacheyard"][test])
                    samples.bare.append(measured["bare"][test])
                if args.verbose:
                    print(
                        f"  run {index + 1:>2} {label:<8} {test} P{pipeline:<2}"
                        f"  cacheyard {measured['cacheyard'][test]:>11,.0f}"
                        f"  bare {measured['bare'][test]:>11,.0f} ops/s"
                        + ("  (warm-up, not counted)" if warmup else ""),
                        flush=True,
                    )


BENCHMARK_CLIENT = "redis-benchmark -k 0"
SERIAL_CLIENT = "1 client, serial"


def measure_auth(
    targets: dict[tuple[str, str], Target],
    ca: str,
    args: argparse.Namespace,
    results: Results,
) -> None:
    """Connections/s of every target (side, auth), for both clients, in alternating order."""
    context = ssl.create_default_context(cafile=ca)  # verifies the node by address
    runs: dict[str, Callable[[Target], tuple[float, int]]] = {
        BENCHMARK_CLIENT: lambda target: (
            redis_benchmark(
                target.address,
                ca,
                "ping_mbulk",
                args.connections,
                args.clients,
                token=target.token,
                user=target.user,
                reconnect=True,
            )["PING_MBULK"],
            args.connections,
        ),
        SERIAL_CLIENT: lambda target: (
            serial_connections(target, context, args.serial_connections),
            args.serial_connections,
        ),
    }
    cells = list(targets)
    for index in range(args.warmup + args.rounds):
        warmup = index < args.warmup
        for name, run_one in runs.items():
            for side, auth in alternate(cells, index):
                target = targets[(side, auth)].current()  # an IAM token: reused until near expiry
                before = cpu_seconds(target.pid)
                rate, count = run_one(target)
                after = cpu_seconds(target.pid)
                cpu = (
                    (after - before) / count * 1e6
                    if before is not None and after is not None
                    else None
                )
                samples = results.auth.setdefault((name, auth), AuthSamples())
                if not warmup:
                    getattr(samples.rate, side).append(rate)
                    if cpu is not None:
                        getattr(samples.cpu, side).append(cpu)
                if args.verbose:
                    shown = f"{cpu:.0f} us/conn" if cpu is not None else "CPU unknown"
                    print(
                        f"  run {index + 1:>2} {name:<20} {side:<9} {auth:<8}"
                        f" {rate:>9,.0f} conn/s  server {shown}"
                        + ("  (warm-up, not counted)" if warmup else ""),
                        flush=True,
                    )


# -- The run ------------------------------------------------------------------------------


def ca_path(service: Service) -> str:
    """The CA certificate as a user finds it: ``cacheyard ca``."""
    done = subprocess.run(
        [sys.executable, "-m", "cacheyard", "ca", "--data-dir", str(service.data_dir)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    path = done.stdout.strip()
    if done.returncode != 0 or not Path(path).is_file():
        raise BenchError(f"cacheyard ca exited with {done.returncode}: {done.stderr.strip()}")
    return path


def run(args: argparse.Namespace, work_dir: Path) -> Results:
    results = Results()
    parts = set(args.part or PARTS)
    service = Service(work_dir, args.address_base)
    try:
        service.start()
        client = service.client()
        ca = ca_path(service)
        bare = Bare(work_dir, args.address_base, CertificateAuthority(Path(ca).parent))
        if parts & {"node", "auth"}:
            run_single(client, service.data_dir, ca, bare, parts, args, results)
        if "group" in parts:
            run_group(client, ca, bare, args, results)
    except ClientError as exc:
        raise BenchError(f"the API refused a call: {exc}") from exc
    finally:
        service.down()
    return results


def run_single(
    client: Any,
    data_dir: Path,
    ca: str,
    bare: Bare,
    parts: set[str],
    args: argparse.Namespace,
    results: Results,
) -> None:
    """The 1-node throughput scenario, then the AUTH cost (which reuses its servers)."""
    processes: list[subprocess.Popen[bytes]] = []
    created: list[str] = []
    groups: list[str] = []
    try:
        cacheyard = create_cluster(client, data_dir, ca, CLUSTER_ID, None)
        created.append(CLUSTER_ID)
        single = bare.start(BARE_SINGLE, processes)
        bare.wait_ready(single, 0, processes)
        if "node" in parts:
            sides = {"cacheyard": cacheyard.address, "bare": single.address}
            compare_tls("1 node", cacheyard.address, single.address, ca, results)
            measure_throughput("1 node", sides, ca, args, results)
        if "auth" in parts:
            token = secrets.token_hex(16)  # 32 characters, within ElastiCache's rules
            with_token = create_cluster(client, data_dir, ca, TOKEN_CLUSTER_ID, token)
            created.append(TOKEN_CLUSTER_ID)
            bare_token = bare.start(BARE_TOKEN, processes, token=token)
            bare.wait_ready(bare_token, 0, processes)
            iam = create_iam_group(client, data_dir, ca, admin_credentials(data_dir))
            groups.append(IAM_GROUP_ID)
            targets = {
                ("cacheyard", "none"): cacheyard,
                ("cacheyard", "token"): with_token,
                ("bare", "none"): single,
                ("bare", "token"): bare_token,
                ("cacheyard", "password"): iam.password,
                ("cacheyard", "iam"): iam.iam,
            }
            check_token_required(targets, ca)
            check_users_required(iam, ca)
            count_passwords(iam, ca, results)
            measure_auth(targets, ca, args, results)
            count_passwords(iam, ca, results)
    finally:
        stop_processes(processes)
    for cluster_id in created:
        delete_cluster(client, cluster_id)
    for group_id in groups:
        delete_group(client, group_id)


def check_token_required(targets: dict[tuple[str, str], Target], ca: str) -> None:
    """Both token servers refuse a client without the token: the token is really asked for."""
    for side in SIDES:
        target = targets[(side, "token")]
        probe = tls_client(target.address, ca)
        try:
            probe.ping()
        except redis.AuthenticationError:
            continue
        except (RedisError, OSError) as exc:
            raise BenchError(f"{side} token server {target.address}: {exc!r}") from exc
        finally:
            probe.close()
        raise BenchError(f"{side} token server {target.address} answered PING without AUTH")


def check_users_required(group: IamGroup, ca: str) -> None:
    """The IAM group's node refuses a client without AUTH, the password user with another
    password and the IAM user with a token signed by an unknown key: Redis really checks
    what the users send."""
    address = group.password.address
    forged = IamCredentialProvider(
        IAM_GROUP_ID,
        IAM_USER,
        REGION,
        AwsCredentials("AKIAUNKNOWNKEY000000", secrets.token_hex(20)),
    )
    refused = {
        "no AUTH": (None, None),
        f"{PASSWORD_USER} with another password": (secrets.token_hex(16), PASSWORD_USER),
        f"{IAM_USER} with a forged token": (forged.token(), IAM_USER),
    }
    for what, (token, user) in refused.items():
        probe = tls_client(address, ca, token, user)
        try:
            probe.ping()
        except redis.AuthenticationError:
            continue
        except (RedisError, OSError) as exc:
            raise BenchError(f"{IAM_GROUP_ID} {address}, {what}: {exc!r}") from exc
        finally:
            probe.close()
        raise BenchError(f"{IAM_GROUP_ID} {address} answered PING, {what}")


def count_passwords(group: IamGroup, ca: str, results: Results) -> None:
    address = group.iam.address
    for user in (IAM_USER, PASSWORD_USER):
        held = held_passwords(address, ca, group.default_password, user)
        results.passwords.setdefault(user, []).append(held)


def run_group(client: Any, ca: str, bare: Bare, args: argparse.Namespace, results: Results) -> None:
    endpoint = create_group(client, ca, GROUP_ID, len(BARE_GROUP))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        primary = bare.start(BARE_GROUP[0], processes, in_group=True)
        for octet in BARE_GROUP[1:]:
            bare.start(octet, processes, primary=primary.address, in_group=True)
        bare.wait_ready(primary, len(BARE_GROUP) - 1, processes)
        sides = {"cacheyard": endpoint, "bare": primary.address}
        compare_tls(f"{len(BARE_GROUP)} nodes", endpoint, primary.address, ca, results)
        measure_throughput(f"{len(BARE_GROUP)} nodes", sides, ca, args, results)
    finally:
        stop_processes(processes)
    delete_group(client, GROUP_ID)


# -- The report ---------------------------------------------------------------------------


def _runs(samples: Samples, scale: float, unit: str) -> str:
    def shown(values: list[float]) -> str:
        return " ".join(f"{v / scale:.0f}{unit}" for v in values)

    return f"{shown(samples.cacheyard)} / {shown(samples.bare) or '-'}"


def header(args: argparse.Namespace) -> None:
    print(
        f"redis-server {engine_version(['redis-server', '--version'])},"
        f" {ssl.OPENSSL_VERSION}, Python {platform.python_version()},"
        f" {os.cpu_count()} CPUs, {platform.machine()}; node type {NODE_TYPE};"
        f" median of {args.rounds} runs (+{args.warmup} warm-up) per side, alternating"
    )


def report_throughput(results: Results, args: argparse.Namespace) -> bool:
    """The throughput table; True when every ratio reaches the goal."""
    print()
    print(
        "Throughput over TLS: redis-benchmark --tls through Cacheyard vs. a bare TLS"
        f" redis-server\n-t set,get -n {args.requests} -c {args.clients}, unpipelined and -P 16"
    )
    print()
    title = (
        f"{'scenario':<9} {'test':<8} {'Cacheyard ops/s':>16} {'bare ops/s':>16} {'ratio':>7}"
        "   runs (Cacheyard / bare)"
    )
    print(title)
    print("-" * len(title))
    met = True
    lowest = float("inf")
    for (label, test, pipeline), samples in results.throughput.items():
        cacheyard, bare = median(samples.cacheyard), median(samples.bare)
        ratio = cacheyard / bare if bare > 0 else 0.0
        lowest = min(lowest, ratio)
        met = met and ratio >= GOAL_RATIO
        name = f"{test} P{pipeline}"
        print(
            f"{label:<9} {name:<8} {cacheyard:>16,.0f} {bare:>16,.0f} {ratio:>7.3f}"
            f"   {_runs(samples, 1000, 'k')}"
        )
    print()
    for note in results.notes:
        print(note)
    print(
        f"Goal: at least {GOAL_RATIO:g} of bare throughput in every row:"
        f" {'MET' if met else 'NOT MET'} (lowest {lowest:.3f})"
    )
    return met


def report_auth(results: Results, args: argparse.Namespace) -> None:
    print()
    print(
        "AUTH cost: connections/s, each a new TCP connection + full TLS handshake (CA"
        " verified) + AUTH or not + PING, 1 node\n"
        f"{BENCHMARK_CLIENT}: redis-benchmark --tls -k 0 -c {args.clients} -n"
        f" {args.connections} -t ping_mbulk [--user user] [-a token] (AUTH in the PING's"
        " write);\n"
        f"{SERIAL_CLIENT}: Python ssl, {args.serial_connections} connections, AUTH and PING"
        " each awaited.\n"
        "AUTH none/token: the default user, on a cluster without and with AuthToken;"
        f" password/iam: AUTH <user> <password or IAM token>\non the 1-node group"
        f" {IAM_GROUP_ID} ({PASSWORD_USER}, {IAM_USER}; Cacheyard only)."
    )
    print()
    title = (
        f"{'client':<20} {'AUTH':<8} {'Cacheyard':>10} {'bare':>10} {'ratio':>7}"
        f" {'server us/conn':>16}   runs (Cacheyard / bare)"
    )
    print(title)
    print("-" * len(title))
    for (name, auth), samples in results.auth.items():
        cacheyard = median(samples.rate.cacheyard)
        bare, ratio, cpu = "-", "-", "-"
        if samples.rate.bare:
            measured = median(samples.rate.bare)
            bare = f"{measured:,.0f}"
            ratio = f"{cacheyard / measured:.3f}" if measured > 0 else "0.000"
        if samples.cpu.cacheyard:
            theirs = f"{median(samples.cpu.bare):.0f}" if samples.cpu.bare else "-"
            cpu = f"{median(samples.cpu.cacheyard):.0f} / {theirs}"
        print(
            f"{name:<20} {auth:<8} {cacheyard:>10,.0f} {bare:>10} {ratio:>7}"
            f" {cpu:>16}   {_runs(samples.rate, 1, '')}"
        )
    print()
    for name in (BENCHMARK_CLIENT, SERIAL_CLIENT):
        none, token = results.auth.get((name, "none")), results.auth.get((name, "token"))
        if none is None or token is None:
            continue
        costs = []
        for side in SIDES:
            plain = median(getattr(none.rate, side))
            authed = median(getattr(token.rate, side))
            costs.append(f"{'Cacheyard' if side == 'cacheyard' else side} {authed / plain:.3f}")
        print(f"Token / no AUTH, connections/s, {name}: {', '.join(costs)}")
    for name in (BENCHMARK_CLIENT, SERIAL_CLIENT):
        password = results.auth.get((name, "password"))
        iam = results.auth.get((name, "iam"))
        if password is None or iam is None:
            continue
        line = (
            f"IAM / password user, connections/s, {name}: Cacheyard"
            f" {median(iam.rate.cacheyard) / median(password.rate.cacheyard):.3f}"
        )
        if iam.cpu.cacheyard and password.cpu.cacheyard:
            line += (
                f" (server {median(iam.cpu.cacheyard):.0f} / "
                f"{median(password.cpu.cacheyard):.0f} us/conn)"
            )
        print(line)
    if results.passwords:
        held = "; ".join(
            f"{user} {' then '.join(str(count) for count in counts)}"
            for user, counts in results.passwords.items()
        )
        print(
            f"Passwords each user holds on {IAM_GROUP_ID}'s node (ACL GETUSER, before then"
            f" after the runs): {held}"
        )


# -- Command line -------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="redis-benchmark over TLS through Cacheyard vs. a bare TLS redis-server,"
        " and the cost of AUTH tokens and IAM authentication on new connections."
    )
    parser.add_argument("--rounds", type=int, default=3, help="measured runs per side (default 3)")
    parser.add_argument(
        "--warmup", type=int, default=0, help="runs first and not counted (default 0)"
    )
    parser.add_argument(
        "--requests", type=int, default=200000, help="redis-benchmark -n for SET/GET (200000)"
    )
    parser.add_argument("--clients", type=int, default=50, help="redis-benchmark -c (default 50)")
    parser.add_argument(
        "--connections",
        type=int,
        default=5000,
        help="connections per redis-benchmark -k 0 run (default 5000)",
    )
    parser.add_argument(
        "--serial-connections",
        type=int,
        default=2000,
        help="connections per run of the serial client (default 2000)",
    )
    parser.add_argument(
        "--part",
        action="append",
        choices=PARTS,
        help="only this part (repeatable; default all): node (1-node throughput),"
        " group (3-node throughput), auth (AUTH cost)",
    )
    parser.add_argument(
        "--address-base",
        type=int,
        default=None,
        help="the service and the bare servers use 127.<base>.0.0/16"
        " (default: the first free one from 150)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (logs, data)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print every run")
    args = parser.parse_args(argv)
    counts = (args.rounds, args.requests, args.clients, args.connections, args.serial_connections)
    if min(counts) < 1 or args.warmup < 0:
        parser.error(
            "--rounds, --requests, --clients and the connection counts must be at least 1,"
            " --warmup at least 0"
        )
    if args.address_base is None:
        args.address_base = free_base()
        if args.address_base is None:
            parser.error("every loopback /16 has a listener: give --address-base")
    elif not 1 <= args.address_base <= 254:
        parser.error("--address-base must be within 1-254")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if missing_binaries("redis-server", "redis-benchmark"):
        return 2
    results = in_work_dir("tls", args.keep, lambda work_dir: run(args, work_dir))
    if results is None:
        return 1
    print()
    header(args)
    if results.throughput:
        report_throughput(results, args)
    if results.auth:
        report_auth(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
