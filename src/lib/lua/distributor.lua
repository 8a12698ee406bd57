-- distributor.lua: a distributor's own record (SPEC 2 keys distributors,
-- distributor-<name>).
--
-- KEYS[1]  distributors   KEYS[2]  distributor-<name>
-- ARGV[1]  "register", "touch" or "down"   ARGV[2]  the name
-- register: ARGV[3] host, ARGV[4] port, ARGV[5] distributor_timeout (ms).
--   Refused with "taken" when the record is UP and was refreshed within the
--   timeout (another live distributor has this name: SET NX semantics for
--   a name whose holder is alive).  Otherwise the name joins distributors
--   and the record gets host, port, state=UP, update=now: "ok".
-- touch: update=now, state=UP (every loop_interval).  Returns "ok", or
--   "recovered" when the record was DOWN: another distributor took this
--   one for dead and returned its in-flight items.
-- down: state=DOWN (clean shutdown): "ok".
-- Each is idempotent: they set fields to fixed values (update to now).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nows = string.format('%.0f', now)
local mode = ARGV[1]
if mode == 'register' then
  local rec = redis.call('HMGET', KEYS[2], 'state', 'update')
  if rec[1] == 'UP' and (tonumber(rec[2]) or 0) >= now - tonumber(ARGV[5]) then
    return 'taken'
  end
  redis.call('SADD', KEYS[1], ARGV[2])
  redis.call('HSET', KEYS[2], 'host', ARGV[3], 'port', ARGV[4], 'state', 'UP', 'update', nows)
  return 'ok'
elseif mode == 'touch' then
  local state = redis.call('HGET', KEYS[2], 'state')
  redis.call('SADD', KEYS[1], ARGV[2])
  redis.call('HSET', KEYS[2], 'state', 'UP', 'update', nows)
  if state == 'DOWN' then
    return 'recovered'
  end
  return 'ok'
elseif mode == 'down' then
  redis.call('HSET', KEYS[2], 'state', 'DOWN', 'update', nows)
  return 'ok'
end
return redis.error_reply('distributor.lua: unknown mode ' .. tostring(mode))
