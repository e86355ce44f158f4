-- Admit a user to a campaign's line in one round trip.
-- KEYS: 1 seq, 2 line, 3 held, 4 done, 5 soldout, 6 clock, 7 flight, 8 issued,
--       9 trace (the line's buckets are named from KEYS[2]: line.lua)
-- ARGV: 1 user, 2 per-user limit, 3 now (unix ms, the admission time),
--       4 max waiting (0: no cap), 5 trace carrier ('' or absent: untraced),
--       6 the user's index bucket (line.lua's line_ukey; '' or absent: hashed here)
-- Returns {code, entry, position, state, reason, issuance id, claimed}:
--   code 0 = newly admitted, 1 = repeat (nothing written), 2 = sold out,
--   3 = line full (nothing written for either); claimed = units issued or in
--   flight, for a waiting answer (else -1).
-- Every read and check comes before the first write, which is the HSETNX
-- that puts a new user in the index: it writes nothing for a user already
-- waiting, who hears the repeat answer. Apart from that, admission writes
-- the line's count, its order bucket and, once per 32 entries, one index
-- more of the tree of those out of line (line.lua).
local user = ARGV[1]
local limit = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cap = tonumber(ARGV[4] or '0')
local trace = ARGV[5] or ''
local ubucket = tonumber(ARGV[6] or '')

local function claimed()
  return tonumber(redis.call('GET', KEYS[8]) or '0') + redis.call('ZCARD', KEYS[7])
end

local line = line_open(KEYS[2])
local uk = line_ukey(line, user, ubucket)

-- waiting answers a user found waiting with entry n.
local function waiting(n)
  if redis.call('EXISTS', KEYS[5]) == 1 then
    return {1, n, 0, 'rejected', 'sold_out', '', -1}
  end
  return {1, n, line_position(line, user, n), 'waiting', '', '', claimed()}
end
-- lookup: the user's waiting entry, for the answers that refuse a new user
-- (a user already waiting hears the repeat answer instead).
local function lookup()
  local n = redis.call('HGET', uk, user)
  return n and tonumber(n)
end

local held = redis.call('HGET', KEYS[3], user)
if held then
  local n = lookup()
  if n then return waiting(n) end
  return {1, tonumber(held), 0, 'in_flight', '', '', -1}
end
local rec = redis.call('HGET', KEYS[4], user)
if rec then
  local r = cmsgpack.unpack(rec)
  if r[1] == 'rejected' or (#r - 4) >= limit then
    local n = lookup()
    if n then return waiting(n) end
    return {1, r[2], 0, r[1], r[3], r[4], -1}
  end
end
if redis.call('EXISTS', KEYS[5]) == 1 then
  local n = lookup()
  if n then return waiting(n) end
  return {2, 0, 0, '', '', '', -1}
end
local size = line.w
if cap > 0 and size >= cap then
  local n = lookup()
  if n then return waiting(n) end
  return {3, 0, size, '', '', '', -1}
end
local last = redis.call('ZREVRANGE', KEYS[6], 0, 0)
local c = claimed()
local n = tonumber(redis.call('GET', KEYS[1]) or '0') + 1
local bad = line_layout_check(line, n - 1)
if bad then return bad end
local b = math.floor(n / BUCKET)
-- The first entry of an order bucket extends the tree of those out of the
-- line to cover it (reads here, the write below).
local sets, tsize = nil, nil
if n % BUCKET == 0 or n == 1 then
  sets, tsize = out_grow(line, b + 1)
end

if redis.call('HSETNX', uk, user, n) == 0 then
  return waiting(lookup())
end
redis.call('INCR', KEYS[1])
local added = redis.call('ZADD', line.base .. 'q:' .. b, n % BUCKET, user)
if sets then
  out_add(line, b + 1, 0, sets, tsize)
end
if added > 0 then
  redis.call('INCR', KEYS[2])
else
  -- The user was in the bucket already (it cannot while the invariant
  -- holds): its number moved, so one number of the bucket is out of line.
  out_count(line, b + 1, 1)
  line.w = line.w + 1
  line_close(line)
end
if trace ~= '' then
  redis.call('HSET', KEYS[9], user, trace)
end
-- A clock checkpoint at most every 10 ms maps entry numbers to admission
-- times, so no timestamp is stored per waiting entry. NX: a time already
-- there (one too large for a double to tell from the last) keeps its first
-- entry number, so the entries before this one keep their time.
if #last == 0 or now >= tonumber(last[1]) + 10 then
  redis.call('ZADD', KEYS[6], 'NX', n, ARGV[3])
end
return {0, n, size + 1, 'waiting', '', '', c}
