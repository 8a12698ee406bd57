-- take.lua: move up to n items from a queue into a distributor's in-flight
-- list, oldest first (SPEC 5.1: "take and claim up to that many items in
-- one script call").
--
-- KEYS[1]  the source list: new-task, or queue-<function> (parked items)
-- KEYS[2]  inflight-<distributor>
-- ARGV[1]  n, the most items to move
--
-- Returns the items moved, as an array of strings, oldest first; empty
-- when the source is empty.
--
-- Producers LPUSH, so the oldest item is at the RIGHT end; it goes to the
-- LEFT end of the in-flight list.  Not idempotent by itself and need not
-- be: whatever it moved is in Redis (inflight-<distributor>), so a lost
-- reply loses nothing; the distributor's start or another distributor's
-- recovery returns it to new-task.
local out = {}
local n = tonumber(ARGV[1]) or 0
for i = 1, n do
  local item = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
  if not item then
    break
  end
  out[i] = item
end
return out
