"""The only code that touches engine processes: redis-server, memcached and
the Memcached configuration endpoint.

Modules: ``spec`` (what to run), ``host`` (the engine-host boundary and its
local implementation), ``launch`` (command lines, redis.conf), ``procfs``
(identity from /proc), ``probes`` (readiness over the wire), ``discovery`` and
``discovery_server`` (Memcached auto discovery).

Nothing is imported here on purpose: the configuration endpoint runs as
``python -m cacheyard.engines.discovery_server`` and must start without
loading redis-py.
"""
