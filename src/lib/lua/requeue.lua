-- requeue.lua: put a lost or stopped task back on new-task (SPEC 3.2, 5.1).
--
-- KEYS[1]  new-task   KEYS[2]  tasks   KEYS[3]  running   KEYS[4]  end-task
-- ARGV[1]  the key prefix
-- ARGV[2]  the task id
-- ARGV[3]  the expected attempt of a RUNNING record, or "" for any
-- ARGV[4]  the reason, for the error when the task is ended instead
-- ARGV[5]  "1": the worker died under it or could not stop it: failures +1
-- ARGV[6]  "1": a RUNNING record must be stale (update older than
--          ARGV[8]); "0": no staleness needed (the worker's connection
--          closed, or the worker rejected the task)
-- ARGV[7]  max_attempts, or "" for the record's own (default 5)
-- ARGV[8]  task_timeout in ms
--
-- Applies only to a STOPPED record, or a RUNNING one with the expected
-- attempt (and, with ARGV[6] "1", a stale update).  Then:
--   - request=cancel on the record: the task is ended with error
--     "cancelled" instead;                                     -> "ended"
--   - with ARGV[5] "1" and a RUNNING record, failures +1; when max_attempts > 0 and failures
--     reach it, the task is ended with error "max_attempts reached:
--     <reason>";                                               -> "ended"
--   - otherwise the task JSON as first submitted (the record's data), with
--     ,"attempt":<attempt> spliced in before its final '}', is pushed on
--     the RIGHT end of new-task (it is taken next); state=QUEUED; worker,
--     distributor, start, update and a stale request=stop are cleared;
--     attempt is kept, so the next claim gets a higher one.  -> "requeued"
-- Ending respects clean_end as finish.lua does.
-- Otherwise nothing changes: "skip <state>" ("skip none" without a record,
-- "skip nodata" for a record without data to requeue).
--
-- Idempotent: a retried requeue finds QUEUED (or END, or no record) and
-- does nothing.  The data is spliced as text, never re-encoded (cjson would
-- turn [] into {}); the spliced member comes last, so it wins over any
-- "attempt" the submitter put in the original.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = ARGV[2]
local key = ARGV[1] .. 'task-' .. id
local rec = redis.call('HMGET', key, 'state', 'attempt', 'update', 'data', 'clean_end',
  'max_attempts', 'failures', 'request')
local state, attempt = rec[1], tonumber(rec[2]) or 0
if not state then
  return 'skip none'
end

local applies = false
if state == 'STOPPED' then
  applies = true
elseif state == 'RUNNING' and (ARGV[3] == '' or attempt == tonumber(ARGV[3])) then
  applies = ARGV[6] == '0' or (tonumber(rec[3]) or 0) < now - tonumber(ARGV[8])
end
if not applies then
  return 'skip ' .. state
end

local function end_task(err)
  if rec[5] == '0' then
    redis.call('HSET', key, 'state', 'END', 'end', string.format('%.0f', now), 'error', err)
    redis.call('HDEL', key, 'request')
    redis.call('SADD', KEYS[4], id)
  else
    redis.call('DEL', key)
  end
  redis.call('SREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
end

if rec[8] == 'cancel' then
  end_task('cancelled')
  return 'ended'
end

-- Only a death under a RUNNING task counts: a task its worker stopped
-- cleanly (STOPPED) failed nothing.
if ARGV[5] == '1' and state == 'RUNNING' then
  local failures = (tonumber(rec[7]) or 0) + 1
  redis.call('HSET', key, 'failures', string.format('%.0f', failures))
  local max_attempts = tonumber(ARGV[7]) or tonumber(rec[6]) or 5
  if max_attempts > 0 and failures >= max_attempts then
    end_task('max_attempts reached: ' .. ARGV[4])
    return 'ended'
  end
end

local data = rec[4]
local last = data and #data or 0
while last > 0 and string.byte(data, last) ~= 125 do -- '}'
  last = last - 1
end
if last == 0 then
  return 'skip nodata'
end
redis.call('RPUSH', KEYS[1], string.sub(data, 1, last - 1) .. ',"attempt":' ..
  string.format('%.0f', attempt) .. string.sub(data, last))
redis.call('HSET', key, 'state', 'QUEUED')
redis.call('HDEL', key, 'worker', 'distributor', 'start', 'update', 'request')
redis.call('ZREM', KEYS[3], id)
return 'requeued'
