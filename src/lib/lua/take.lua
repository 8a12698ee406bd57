-- take.lua: move items from queues into a distributor's in-flight list,
-- oldest first (SPEC 5.1: "take and claim up to that many items in one
-- script call"; parked items are served before newer ones).
--
-- KEYS[1]      inflight-<distributor>
-- KEYS[2..]    the sources, in the order they are served: queue-<function>
--              lists (parked items) first, new-task last
-- ARGV[1]      n, the most items to move in all
-- ARGV[1 + i]  the most items to move from KEYS[1 + i]
--
-- Returns the items moved, as an array of strings, oldest first within
-- each source; empty when every source is empty.
--
-- Producers LPUSH, so the oldest item is at the RIGHT end; it goes to the
-- LEFT end of the in-flight list.  Each source costs three commands
-- (LRANGE, LTRIM, LPUSH) however many items move: the same result as one
-- LMOVE RIGHT LEFT per item, oldest first.  Not idempotent by itself and need not
-- be: whatever it moved is in Redis (inflight-<distributor>), so a lost
-- reply loses nothing; the distributor's start or another distributor's
-- recovery returns it to new-task.
local out = {}
local left = tonumber(ARGV[1]) or 0
for i = 2, #KEYS do
  local want = math.min(tonumber(ARGV[i]) or 0, left)
  if want > 0 then
    -- The want rightmost items, newest first; moved oldest first.
    -- Pushed first (in slices of 1,000, within unpack()'s limit), trimmed
    -- after: a failure on the way leaves a copy behind, never none.
    local got = redis.call('LRANGE', KEYS[i], -want, -1)
    if #got > 0 then
      local moved = {}
      for j = #got, 1, -1 do
        moved[#moved + 1] = got[j]
        out[#out + 1] = got[j]
      end
      for j = 1, #moved, 1000 do
        redis.call('LPUSH', KEYS[1], unpack(moved, j, math.min(j + 999, #moved)))
      end
      redis.call('LTRIM', KEYS[i], 0, -#got - 1)
      left = left - #got
    end
  end
  if left <= 0 then
    break
  end
end
return out
