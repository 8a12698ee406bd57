-- arrive.lua: claim the item a blocking take has just moved into the
-- in-flight list, in the same Redis wake-up (SPEC 3.2, 5.1).
--
-- The distributor pipelines this call right behind its BLMOVE new-task
-- inflight-<distributor>: Redis runs it as soon as the BLMOVE returns, so
-- a task submitted to an idle cluster is claimed without a round trip of
-- its own.  It claims only what it can check as strictly as the
-- distributor's C code (item.c) does, and only a fresh task; any other
-- item stays where the BLMOVE put it, for the claim the distributor then
-- makes in C (claim.lua), exactly as without this call:
--   - plain text: printable ASCII, no backslash (so no escapes), a '{' as
--     its first byte; numbers without exponents, leading zeros, bare dots
--     or plus signs; nesting at most 16 deep; and valid JSON (cjson);
--   - "function" a non-empty string that a worker with a free slot runs
--     (ARGV pairs) and without parked items (queue-<function> empty);
--   - "id" absent (ARGV[4] is spliced in, as the C code would splice its
--     own) or 1 to 128 characters of [A-Za-z0-9_.:-] without a record;
--   - "attempt" absent; "clean_end", "state_optional" absent or booleans;
--     "max_attempts" absent, or an integer 0..2^31-1 in an item without
--     any decimal number;
--   - the item, its function 6 times over and 256 bytes fit max_message.
-- The distributor checks a claimed item again in C; should the two ever
-- disagree, "undo" moves it to bad-task.
--
-- KEYS[1]  inflight-<distributor>   KEYS[2]  tasks   KEYS[3]  running
-- KEYS[4]  bad-task
-- ARGV[1]  the key prefix           ARGV[2]  the distributor's name
-- ARGV[3]  "claim":
--   ARGV[4]  a fresh task id, for an item without one
--   ARGV[5]  max_message
--   ARGV[6]  max_attempts for an item without one
--   then pairs: a function, the worker it goes to
--   Returns {} when nothing was claimed (the in-flight list does not hold
--   exactly one item, or the item is left for the C claim), else
--   {raw, text, id, worker, function, clean_end ("1"/"0"), max_attempts}:
--   the item left the list and its record is RUNNING with attempt 1 (text
--   is raw, with the id spliced in when it had none).
-- ARGV[3]  "undo": ARGV[4] the id of an item this distributor claimed
--   here, ARGV[5] the wrapper to push on bad-task.  When the record is
--   still that claim's (RUNNING, attempt 1, this distributor) it is
--   deleted and the wrapper pushed: {"ok"}; otherwise nothing: {"gone"}.
-- ARGV[3]  "move": ARGV[4] the id of an item this distributor claimed here
--   for worker ARGV[5], which is not the one to run it any more (the
--   distributor chose it before it waited, and slots or workers changed
--   meanwhile); ARGV[6] the worker that is.  When the record is still that
--   claim's (RUNNING, attempt 1, this distributor, worker ARGV[5]), its
--   worker becomes ARGV[6]: {"ok"}; otherwise nothing: {"gone"}.
local prefix, distributor = ARGV[1], ARGV[2]

if ARGV[3] == 'move' then
  local key = prefix .. 'task-' .. ARGV[4]
  local rec = redis.call('HMGET', key, 'state', 'attempt', 'distributor', 'worker')
  if rec[1] ~= 'RUNNING' or rec[2] ~= '1' or rec[3] ~= distributor or rec[4] ~= ARGV[5] then
    return { 'gone' }
  end
  redis.call('HSET', key, 'worker', ARGV[6])
  return { 'ok' }
end

if ARGV[3] == 'undo' then
  local id = ARGV[4]
  local key = prefix .. 'task-' .. id
  local rec = redis.call('HMGET', key, 'state', 'attempt', 'distributor')
  if rec[1] ~= 'RUNNING' or rec[2] ~= '1' or rec[3] ~= distributor then
    return { 'gone' }
  end
  redis.call('DEL', key)
  redis.call('SREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('LPUSH', KEYS[4], ARGV[5])
  return { 'ok' }
end

local none = {}
if redis.call('LLEN', KEYS[1]) ~= 1 then
  return none
end
local raw = redis.call('LINDEX', KEYS[1], 0)
if raw:byte(1) ~= 123 or raw:find('[^ -~]') or raw:find('\\', 1, true) then
  return none
end
-- The item without its strings (none holds an escaped quote), then
-- without the literals: what is left are numbers and punctuation.
local bare = raw:gsub('"[^"]*"', '""')
local rest = bare:gsub('true', ''):gsub('false', ''):gsub('null', '')
if rest:find('%a') or rest:find('[^%d]0%d') or rest:find('[^%d]%.') or rest:find('%.[^%d]') or
    rest:find('%.$') or rest:find('+', 1, true) or rest:find('%-[^%d]') or rest:find('%-$') then
  return none
end
-- Nesting: each pass removes the innermost level of brackets.
local br = bare:gsub('[^%[%]{}]', '')
for _ = 1, 16 do
  local n
  br, n = br:gsub('[%[{][%]}]', '')
  if n == 0 then
    break
  end
end
if br ~= '' then
  return none
end
local ok, t = pcall(cjson.decode, raw)
if not ok or type(t) ~= 'table' then
  return none
end

local fn = t['function']
if type(fn) ~= 'string' or fn == '' then
  return none
end
local worker
for i = 7, #ARGV - 1, 2 do
  if ARGV[i] == fn then
    worker = ARGV[i + 1]
    break
  end
end
if not worker or t.attempt ~= nil then
  return none
end
local clean_end, max_attempts = '1', ARGV[6]
if t.clean_end ~= nil then
  if type(t.clean_end) ~= 'boolean' then
    return none
  end
  clean_end = t.clean_end and '1' or '0'
end
if t.state_optional ~= nil and type(t.state_optional) ~= 'boolean' then
  return none
end
if t.max_attempts ~= nil then
  local m = t.max_attempts
  if type(m) ~= 'number' or m ~= math.floor(m) or m < 0 or m > 2147483647 or
      bare:find('.', 1, true) then
    return none
  end
  max_attempts = string.format('%d', m) -- as C prints it: -0 is 0
end
local id, text = t.id, raw
if id == nil then
  id = ARGV[4]
  text = '{"id":"' .. id .. '",' .. raw:sub(2)
elseif type(id) ~= 'string' or #id > 128 or not id:find('^[A-Za-z0-9_.:%-]+$') then
  return none
end
if #text + #fn * 6 + 256 > tonumber(ARGV[5]) then
  return none
end
local key = prefix .. 'task-' .. id
if redis.call('EXISTS', key, prefix .. 'queue-' .. fn) ~= 0 then
  return none
end

local tm = redis.call('TIME')
local now = string.format('%.0f', tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000))
redis.call('LPOP', KEYS[1])
redis.call('HSET', key, 'state', 'RUNNING', 'attempt', '1', 'worker', worker,
  'distributor', distributor, 'start', now, 'update', now, 'clean_end', clean_end,
  'max_attempts', max_attempts, 'function', fn, 'data', text)
redis.call('SADD', KEYS[2], id)
redis.call('ZADD', KEYS[3], now, id)
return { raw, text, id, worker, fn, clean_end, max_attempts }
