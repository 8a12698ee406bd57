-- recover.lua: recover the in-flight list of a distributor that stopped
-- refreshing its record (SPEC 5.1: "moves back to new-task, in one script,
-- the in-flight list of any distributor whose update is older than
-- distributor_timeout").
--
-- KEYS[1]  distributor-<name>   KEYS[2]  inflight-<name>   KEYS[3]  new-task
-- ARGV[1]  distributor_timeout in ms
--
-- Returns "alive" when the record's update is within the timeout (nothing
-- done); otherwise the number of items moved, as a string, after marking
-- the record (if there is one) state=DOWN.
--
-- Items go back in their original order at the RIGHT end of new-task, as
-- in return_inflight.lua.  Idempotent: a retry finds the list empty.  An
-- item moved here that its distributor was about to claim is safe: its
-- claim finds it gone and does nothing.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local update = tonumber(redis.call('HGET', KEYS[1], 'update'))
if update and update >= now - tonumber(ARGV[1]) then
  return 'alive'
end
local n = 0
while redis.call('LMOVE', KEYS[2], KEYS[3], 'LEFT', 'RIGHT') do
  n = n + 1
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'state', 'DOWN')
end
return string.format('%.0f', n)
