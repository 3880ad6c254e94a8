"""The ElastiCache patterns as a client library: connect (following failover),
lazy loading, write-through, sessions, leaderboards, Memcached auto discovery.

It depends on redis-py and pymemcache only; nothing here imports the server.
"""
