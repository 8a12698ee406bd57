-- request.lua: ask a task to stop or to be cancelled, from outside
-- (`dtask stop ID`, `dtask cancel ID`; SPEC 2 field request, SPEC 7).
--
-- KEYS[1]  tasks   KEYS[2]  running   KEYS[3]  end-task
-- ARGV[1]  the key prefix   ARGV[2]  the id   ARGV[3]  "stop" or "cancel"
--
-- stop:    a RUNNING record gets request=stop (its worker reads it with
--          the next heartbeat and stops the task, which becomes STOPPED and
--          is requeued).                              -> "RUNNING"
-- cancel:  a RUNNING or QUEUED record gets request=cancel (the worker
--          stops it and it ends with error "cancelled"; a QUEUED one is
--          ended by its next claim).                  -> "RUNNING"/"QUEUED"
--          A STOPPED record, which nobody runs, is ended cancelled at
--          once (clean_end respected).                -> "ended"
-- Anything else changes nothing: "skip <state>", or "skip none" when there
-- is no record.  Idempotent: it only sets a field to the same value.
local key = ARGV[1] .. 'task-' .. ARGV[2]
local rec = redis.call('HMGET', key, 'state', 'clean_end')
local state = rec[1]
if not state then
  return 'skip none'
end
if ARGV[3] == 'stop' and state == 'RUNNING' then
  redis.call('HSET', key, 'request', 'stop')
  return state
end
if ARGV[3] == 'cancel' then
  if state == 'RUNNING' or state == 'QUEUED' then
    redis.call('HSET', key, 'request', 'cancel')
    return state
  end
  if state == 'STOPPED' then
    local t = redis.call('TIME')
    local now = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
    if rec[2] == '0' then
      redis.call('HSET', key, 'state', 'END', 'end', now, 'error', 'cancelled')
      redis.call('HDEL', key, 'request')
      redis.call('SADD', KEYS[3], ARGV[2])
    else
      redis.call('DEL', key)
    end
    redis.call('SREM', KEYS[1], ARGV[2])
    redis.call('ZREM', KEYS[2], ARGV[2])
    return 'ended'
  end
end
return 'skip ' .. state
