-- bad.lua: move taken items that cannot be tasks (not JSON, no function,
-- a bad id...) from the in-flight list to bad-task, each wrapped with its
-- reason (SPEC 2: never silently dropped).
--
-- KEYS[1]  inflight-<distributor>   KEYS[2]  bad-task
-- then 2 ARGV per item: the item exactly as in the in-flight list, and the
-- wrapper to push, {"reason":"...","item":"<the item as a JSON string>"},
-- built in C (the item may not be JSON, so it is escaped there, not here).
--
-- Returns one string per item: "ok" (moved) or "gone" (no longer in the
-- in-flight list; nothing done).  Idempotent for the same reason as
-- park.lua: only what this call removed is pushed.
local out = {}
for i = 1, #ARGV, 2 do
  if redis.call('LREM', KEYS[1], 1, ARGV[i]) == 0 then
    out[#out + 1] = 'gone'
  else
    redis.call('LPUSH', KEYS[2], ARGV[i + 1])
    out[#out + 1] = 'ok'
  end
end
return out
