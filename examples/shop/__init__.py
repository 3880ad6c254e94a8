"""A small shop on Cacheyard: the client library's patterns in one web app.

- the catalog is read through :class:`~cacheyard.client.cache_aside.AsyncCacheAside`
  in front of SQLite (each page says whether it came from the cache or the database);
- a price change goes through :class:`~cacheyard.client.write_through.AsyncWriteThrough`;
- logins live in server-side sessions
  (:class:`~cacheyard.client.integrations.starlette.SessionMiddleware`);
- a game leaderboard ranks scores on a sorted set
  (:class:`~cacheyard.client.leaderboard.AsyncLeaderboard`).

Every Redis call goes through :func:`~cacheyard.client.connect.connect_async`,
whose retry policy rides through a failover of the replication group.
"""
