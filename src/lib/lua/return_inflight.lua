-- return_inflight.lua: put back every item of a distributor's in-flight
-- list on new-task, to be taken next (SPEC 5.1: "At start a distributor
-- first returns whatever is left in its own inflight-<name>").
--
-- KEYS[1]  inflight-<distributor>   KEYS[2]  new-task
--
-- Returns the number of items moved, as a string.
--
-- Every take puts the item it moved at the LEFT end of the in-flight list,
-- so the newest is leftmost.  Moving items from the LEFT of the in-flight
-- list to the RIGHT end of new-task leaves the oldest rightmost, where the
-- next take finds it: the original order is restored, ahead of anything
-- submitted since.  Idempotent: a retry finds the list empty.
local n = 0
while redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT') do
  n = n + 1
end
return string.format('%.0f', n)
