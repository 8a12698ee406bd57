-- heartbeat.lua: a worker's fenced lease refresh for all its running
-- tasks in one call (SPEC 5.2), also sent by a distributor for a worker
-- that lost Redis (SPEC 5.4).
--
-- KEYS[1]  running
-- ARGV[1]  the key prefix
-- then 2 ARGV per task: id, attempt.
--
-- For each task whose record is RUNNING with that attempt: update=now and
-- its running score=now; the answer is the record's request field ("stop",
-- "cancel", or "" when none).  Any other record (or none): "fenced", and
-- nothing is written: that copy must stop.
-- Returns one string per task, in order.  Idempotent: it only moves
-- update forward for the current attempt.
local t = redis.call('TIME')
local now = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local prefix = ARGV[1]
local out = {}
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  local key = prefix .. 'task-' .. id
  local rec = redis.call('HMGET', key, 'state', 'attempt', 'request')
  if rec[1] == 'RUNNING' and tonumber(rec[2]) == tonumber(ARGV[i + 1]) then
    redis.call('HSET', key, 'update', now)
    redis.call('ZADD', KEYS[1], now, id)
    out[#out + 1] = rec[3] or ''
  else
    out[#out + 1] = 'fenced'
  end
end
return out
