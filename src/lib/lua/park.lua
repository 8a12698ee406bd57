-- park.lua: park taken items that no connected worker can run now
-- (SPEC 5.1: "parks the item in queue-<function>, behind the items parked
-- before it").
--
-- KEYS[1]  inflight-<distributor>
-- ARGV[1]  the key prefix (queue keys are built here: functions are data)
-- then 2 ARGV per item: the item exactly as in the in-flight list, and its
-- function.
--
-- Returns one string per item: "ok" (parked) or "gone" (no longer in the
-- in-flight list: recovered by another distributor; nothing done).
--
-- Items are LPUSHed and served from the RIGHT, so a function's parked
-- items run in the order they were parked.  Idempotent: an item is moved
-- only if this call removed it from the in-flight list, so a retry after
-- a lost reply finds it gone and does nothing.
local out = {}
local prefix = ARGV[1]
for i = 2, #ARGV, 2 do
  if redis.call('LREM', KEYS[1], 1, ARGV[i]) == 0 then
    out[#out + 1] = 'gone'
  else
    redis.call('LPUSH', prefix .. 'queue-' .. ARGV[i + 1], ARGV[i])
    out[#out + 1] = 'ok'
  end
end
return out
