-- finish.lua: record the ends of a batch of tasks, fenced (SPEC 3.2, 5.2).
--
-- KEYS[1]  tasks   KEYS[2]  running   KEYS[3]  end-task
-- ARGV[1]  the key prefix
-- then 5 ARGV per task: id, attempt, outcome ("end", "fail" or
-- "stopped"), result JSON or "", error text or "".
--
-- Each applies only when the record is RUNNING with that attempt; else the
-- answer is "fenced" and nothing changes.  Otherwise, answering "ok":
--   end, fail  with clean_end (the record's field, written at claim; "1"
--              when missing): the record is deleted and the id leaves
--              tasks; without: state=END, end=now, result and error (when
--              given; "failed" for a fail without one), request cleared,
--              the id leaves tasks and joins end-task.  Either way it
--              leaves running.
--   stopped    state=STOPPED, request cleared, running score 0 (so the
--              next sweep's stale query finds it at once).  A stop caused
--              by request=cancel ends the task with error "cancelled"
--              instead (as an end, above).
-- Returns one string per task, in order.  Idempotent: after the first
-- call the record is no longer RUNNING, so a retry is fenced.
local prefix = ARGV[1]
-- The server's time, read once and only when a record keeps its end
-- (TIME costs a few microseconds; a batch of clean_end ends needs none).
local now
local function now_ms()
  if not now then
    local t = redis.call('TIME')
    now = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
  end
  return now
end
local out = {}
-- Ids leaving tasks and running: one SREM and one ZREM at the end (in
-- slices of 1,000 arguments, within unpack()'s limit).  Nothing after the
-- first item's writes can raise an error (a task key that is not a hash
-- is answered "fenced", see below), so none is left half done.
local gone_ids = {}

local function each_slice(cmd, key, list)
  for j = 1, #list, 1000 do
    redis.call(cmd, key, unpack(list, j, math.min(j + 999, #list)))
  end
end

local function end_task(key, id, clean_end, result, err)
  if clean_end == '0' then
    redis.call('HSET', key, 'state', 'END', 'end', now_ms())
    if result ~= '' then
      redis.call('HSET', key, 'result', result)
    end
    if err ~= '' then
      redis.call('HSET', key, 'error', err)
    end
    redis.call('HDEL', key, 'request')
    redis.call('SADD', KEYS[3], id)
  else
    redis.call('DEL', key)
  end
  gone_ids[#gone_ids + 1] = id
end

for i = 2, #ARGV, 5 do
  local id, attempt, outcome, result, err = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local key = prefix .. 'task-' .. id
  local rec = redis.pcall('HMGET', key, 'state', 'attempt', 'clean_end', 'request')
  if rec.err or rec[1] ~= 'RUNNING' or tonumber(rec[2]) ~= tonumber(attempt) then
    out[#out + 1] = 'fenced'
  else
    if outcome == 'stopped' then
      if rec[4] == 'cancel' then
        end_task(key, id, rec[3], '', 'cancelled')
      else
        redis.call('HSET', key, 'state', 'STOPPED')
        redis.call('HDEL', key, 'request')
        redis.call('ZADD', KEYS[2], 0, id)
      end
    elseif outcome == 'fail' then
      end_task(key, id, rec[3], result, err ~= '' and err or 'failed')
    else
      end_task(key, id, rec[3], result, err)
    end
    out[#out + 1] = 'ok'
  end
end
each_slice('SREM', KEYS[1], gone_ids)
each_slice('ZREM', KEYS[2], gone_ids)
return out
