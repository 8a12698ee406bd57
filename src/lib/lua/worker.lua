-- worker.lua: a worker's record (SPEC 2 keys workers, worker-<name>).
--
-- KEYS[1]  workers   KEYS[2]  worker-<name>
-- ARGV[1]  "set" or "clear"   ARGV[2]  the name
-- set: then field/value pairs (host, port, capacity, running, load,
--   functions, state, stuck...) written with update=now; the name joins
--   workers.  Returns "ok".  Idempotent.
-- clear: ARGV[3] an age in ms.  When the record is DOWN and its update is
--   older than that (down_clear_interval), the record is deleted and the
--   name leaves workers: "cleared"; otherwise "skip <state>" ("skip none"
--   without a record; the name then leaves workers too).  Idempotent.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] == 'set' then
  local args = { 'HSET', KEYS[2], 'update', string.format('%.0f', now) }
  for i = 3, #ARGV do
    args[#args + 1] = ARGV[i]
  end
  redis.call(unpack(args))
  redis.call('SADD', KEYS[1], ARGV[2])
  return 'ok'
elseif ARGV[1] == 'clear' then
  local rec = redis.call('HMGET', KEYS[2], 'state', 'update')
  if not rec[1] then
    redis.call('SREM', KEYS[1], ARGV[2])
    return 'skip none'
  end
  if rec[1] == 'DOWN' and (tonumber(rec[2]) or 0) < now - tonumber(ARGV[3]) then
    redis.call('DEL', KEYS[2])
    redis.call('SREM', KEYS[1], ARGV[2])
    return 'cleared'
  end
  return 'skip ' .. rec[1]
end
return redis.error_reply('worker.lua: unknown mode ' .. tostring(ARGV[1]))
