"""The stores over Redis, Valkey or a Redis Cluster: RedisStore (store.py)
and AsyncRedisStore (aio.py), two executors of one set of call bodies
(commands.py, each call a plan of redis-py commands), with the names,
values and error mapping they share (mapping.py). Imported on first use:
`import fastkv` does not import redis-py.
"""
