-- stale.lua: the sweep's index query (SPEC 2 key running): ids whose
-- running score (their update; 0 for STOPPED) is older than a given age
-- by the Redis clock.
--
-- KEYS[1]  running
-- ARGV[1]  age in ms (0: everything up to now)   ARGV[2]  the most ids
--
-- Returns { now, id1, score1, id2, score2, ... }, all strings, oldest
-- first.  Reads only.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local res = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - tonumber(ARGV[1])),
  'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
table.insert(res, 1, string.format('%.0f', now))
return res
