-- claim.lua: claim a batch of items, each for the worker chosen for it
-- (SPEC 3.2 and 5.1), either taken before or straight off the queue.
--
-- KEYS[1]  the items' source: inflight-<distributor>, or new-task
-- KEYS[2]  tasks      KEYS[3]  running   KEYS[4]  end-task
-- KEYS[5]  bad-task
-- ARGV[1]  the key prefix (task keys are built here: ids are data)
-- ARGV[2]  the distributor's name
-- ARGV[3]  "inflight": each item was taken into KEYS[1] (anywhere in it)
--          "tail": each item is expected at the right end of KEYS[1]
--          (new-task), oldest first, as the distributor last read it there
-- then 8 ARGV per item:
--   raw       the item exactly as it is in KEYS[1]
--   text      the item to keep as the record's data (raw, or raw with a
--             generated "id" spliced in)
--   id        its task id (checked in C)
--   attempt   the item's "attempt" (0 when it had none)
--   worker    the worker the task is meant for
--   clean_end "1" or "0" (read from the item in C)
--   max_attempts  from the item, for the requeue script
--   function  the item's function, kept in the record for readers
--
-- Returns one string per item, in order:
--   "ok <attempt>"  claimed: the record is RUNNING with this attempt
--   "cancelled"     the record asked request=cancel: ended, not run
--   "dup"           any other item for that id, or a task key that is not
--                   a hash: moved to bad-task with the reason
--   "gone"          nothing was done: the item is no longer in the
--                   in-flight list (another distributor recovered it); or,
--                   "tail", it is not the queue's oldest item any more
--                   (another distributor took it, or a requeue came first)
--   "parked"        "tail" only: nothing was done, because queue-<function>
--                   of this item, or of one before it in the call, holds
--                   parked items, which are served first (the items after
--                   such an item wait behind it, as they do in the queue)
--
-- Idempotent: the claim first removes its own item from its source (the
-- in-flight list; or new-task's right end, only when the item is there),
-- and does nothing at all when it is not there, so a retried call answers
-- "gone" and claims nothing twice.  An item whose id the distributor
-- generated is "gone" as soon as its record exists, so that a retry never
-- takes another item with the same bytes (a task of its own); an item with
-- its own id and the same bytes as one claimed is a duplicate: "dup".  An
-- item leaves its list and becomes a record in one atomic step: it is
-- never only in the distributor's memory.  It claims only a missing record
-- (for an item without an attempt) or a QUEUED one with the item's
-- attempt, and every claim raises attempt by one: a copy of an older item
-- can never claim again.
local t = redis.call('TIME')
local now = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local prefix, distributor = ARGV[1], ARGV[2]
local tail = ARGV[3] == 'tail'
local out = {}
-- "tail": function -> whether queue-<function> holds parked items.
local parked = {}
-- "tail": an item waits for parked items, and so do those after it.
local blocked = false

-- Ids joining tasks and running, added in one call each at the end.
local claimed = {}
local scored = {}

-- END the task, or delete its record when it has clean_end (SPEC 2).
local function end_task(key, id, clean_end, err)
  if clean_end == '0' then
    redis.call('HSET', key, 'state', 'END', 'end', now, 'error', err)
    redis.call('HDEL', key, 'request')
    redis.call('SADD', KEYS[4], id)
  else
    redis.call('DEL', key)
  end
  redis.call('SREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
end

-- The item leaves its source: nil, or why not ("gone", "parked").
local function take(raw, fn)
  if not tail then
    -- From the tail: the items of a batch were taken oldest first to the
    -- head, so the oldest, claimed first, is the last one.
    return redis.call('LREM', KEYS[1], -1, raw) == 0 and 'gone' or nil
  end
  if parked[fn] == nil then
    parked[fn] = redis.call('EXISTS', prefix .. 'queue-' .. fn) == 1
  end
  if blocked or parked[fn] then
    blocked = true
    return 'parked'
  end
  -- One call in the usual case: pop, and put back what is not the item
  -- (at the same end, in the same atomic step: nobody sees it move).
  local got = redis.call('RPOP', KEYS[1])
  if got ~= raw then
    if got then
      redis.call('RPUSH', KEYS[1], got)
    end
    return 'gone'
  end
  return nil
end

for i = 4, #ARGV, 8 do
  local raw, text, id, want = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local worker, clean_end, max_attempts, fn = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7]
  local res
  local key = prefix .. 'task-' .. id
  -- pcall: a task key that is not a hash must not stop the script
  -- halfway (the SADD/ZADD of the items before it are still to come);
  -- the item goes to bad-task instead.
  -- A fresh item's record is usually missing: one EXISTS says so (an
  -- HMGET's four nils cost more); any record is read in full.
  local rec = {}
  if want ~= 0 or redis.call('EXISTS', key) == 1 then
    rec = redis.pcall('HMGET', key, 'state', 'attempt', 'request', 'data')
  end
  if text ~= raw and (rec.err or rec[1] or rec[2] or rec[3] or rec[4]) then
    -- The distributor generated this id (text is raw with it spliced in):
    -- a record under it can only come from this very claim, retried.  It
    -- must not take another item with the same bytes (that one is a task
    -- of its own, to be claimed under its own id): nothing to do.
    res = 'gone'
  else
    res = take(raw, fn)
  end
  if not res then
    local bad = rec.err and ('task-' .. id .. ' is not a hash: ' .. rec.err)
    local state, attempt
    if not bad then
      state, attempt = rec[1], tonumber(rec[2]) or 0
    end
    if bad then
      redis.call('LPUSH', KEYS[5], '{"reason":' .. cjson.encode(bad) .. ',"item":' .. raw .. '}')
      res = 'dup'
    elseif (not state and want == 0) or (state == 'QUEUED' and attempt == want) then
      if rec[3] == 'cancel' then
        end_task(key, id, clean_end, 'cancelled')
        res = 'cancelled'
      else
        attempt = attempt + 1
        local a = attempt == 1 and '1' or string.format('%.0f', attempt)
        if rec[4] then
          redis.call('HSET', key, 'state', 'RUNNING', 'attempt', a, 'worker', worker,
            'distributor', distributor, 'start', now, 'update', now, 'clean_end', clean_end,
            'max_attempts', max_attempts, 'function', fn)
        else
          redis.call('HSET', key, 'state', 'RUNNING', 'attempt', a, 'worker', worker,
            'distributor', distributor, 'start', now, 'update', now, 'clean_end', clean_end,
            'max_attempts', max_attempts, 'function', fn, 'data', text)
        end
        claimed[#claimed + 1] = id
        scored[#scored + 1] = now
        scored[#scored + 1] = id
        res = 'ok ' .. a
      end
    else
      local why = 'duplicate: task ' .. id .. ' is ' .. (state or 'unknown (no record)') ..
        ' with attempt ' .. string.format('%.0f', attempt) ..
        ', the item has attempt ' .. string.format('%.0f', want)
      redis.call('LPUSH', KEYS[5], '{"reason":' .. cjson.encode(why) .. ',"item":' .. raw .. '}')
      res = 'dup'
    end
  end
  out[#out + 1] = res
end
-- In slices of 1,000 arguments, well within unpack()'s limit.
for j = 1, #claimed, 1000 do
  redis.call('SADD', KEYS[2], unpack(claimed, j, math.min(j + 999, #claimed)))
end
for j = 1, #scored, 1000 do
  redis.call('ZADD', KEYS[3], unpack(scored, j, math.min(j + 999, #scored)))
end
return out
