-- clean.lua: delete an ended task's kept record, as clean_end would
-- (`dtask submit --wait`, dtask_wait() with clean; SPEC 7).
--
-- KEYS[1]  tasks   KEYS[2]  running   KEYS[3]  end-task
-- ARGV[1]  the key prefix   ARGV[2]  the id
--
-- Only an END record is deleted (its id leaves end-task, tasks and
-- running):                                              -> "cleaned"
-- Anything else changes nothing: "skip <state>", or "skip none" when there
-- is no record.  Idempotent: a retry finds no record.
local key = ARGV[1] .. 'task-' .. ARGV[2]
local state = redis.call('HGET', key, 'state')
if not state then
  return 'skip none'
end
if state ~= 'END' then
  return 'skip ' .. state
end
redis.call('DEL', key)
redis.call('SREM', KEYS[3], ARGV[2])
redis.call('SREM', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
return 'cleaned'
