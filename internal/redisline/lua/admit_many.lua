-- Admit many users of one campaign in one round trip, in the order given
-- (entry numbers follow that order, so FIFO stays exact).
-- KEYS: 1 seq, 2 line, 3 held, 4 done, 5 soldout, 6 clock, 7 flight, 8 issued,
--       9 trace (the line's buckets are named from KEYS[2]: line.lua)
-- ARGV: 1 per-user limit, 2 now (unix ms), 3 max waiting (0: no cap), then
--       per user: user, trace carrier ('' when untraced), the user's index
--       bucket (line.lua's line_ukey; '' to hash it here)
-- Returns {claimed, seq, waiting, codes, extras...}: claimed = the units
-- issued or in flight (as admit.lua's seventh value); seq and waiting =
-- the entry counter and the count waiting before this call; codes = one
-- character per user, in order, codes as admit.lua's with 1 split:
--   '0' newly admitted: entry seq + k, position waiting + k, k counting
--       the users answered '0' so far (1 for the first); no extras
--   '5' newly admitted, entry and position in the extras (only should
--       the line's counts disagree with its buckets, which they cannot
--       while the invariant holds)
--   '1' repeat, waiting: extras entry, position
--   '2' sold out: no extras
--   '3' line full: extras the count waiting
--   '4' repeat, not waiting (in flight or decided): extras entry, state
-- So the reply costs one byte for a user admitted anew.
-- The batch's reads of the in-flight and decided records come first (one
-- HMGET each); then each user's reads and checks come before that user's
-- first write, the HSETNX that puts a new user in the index (and tells a
-- user already waiting). The admitted users' entry numbers and order
-- buckets are written together, one ZADD per order bucket, before any
-- position is read and at the end.
local limit = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local line = line_open(KEYS[2])
local soldout = redis.call('EXISTS', KEYS[5]) == 1
-- Units issued or in flight: nothing this script writes changes it.
local claimed = tonumber(redis.call('GET', KEYS[8]) or '0') + redis.call('ZCARD', KEYS[7])
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local bad = line_layout_check(line, seq)
if bad then return bad end
local seq0, w0 = seq, line.w
local codes, extras = {}, {}
local first = nil

-- The in-flight and decided records of every user of the batch, in
-- slices small enough for unpack.
local users = {}
for i = 4, #ARGV, 3 do users[#users + 1] = ARGV[i] end
local function hmget(key)
  local got = {}
  for s = 1, #users, 4000 do
    local part = redis.call('HMGET', key, unpack(users, s, math.min(s + 3999, #users)))
    for j = 1, #part do got[s + j - 1] = part[j] end
  end
  return got
end
local helds = hmget(KEYS[3])
local recs = hmget(KEYS[4])

-- Admitted users not yet written: entries, and per order bucket its
-- (score, user) pairs, buckets in order.
local pending, pairs_of, buckets = 0, {}, {}
local function flush()
  if pending == 0 then return end
  redis.call('INCRBY', KEYS[1], pending)
  for _, b in ipairs(buckets) do
    local args = pairs_of[b]
    local added = redis.call('ZADD', line.base .. 'q:' .. b, unpack(args))
    if added < #args / 2 then
      -- Users were in the bucket already (they cannot while the invariant
      -- holds): their numbers moved, so as many numbers are out of line.
      out_count(line, b + 1, #args / 2 - added)
    end
  end
  pending, pairs_of, buckets = 0, {}, {}
end
local function decided(entry, state)
  codes[#codes + 1] = '4'
  extras[#extras + 1] = entry; extras[#extras + 1] = state
end

local admitted = 0
for u = 1, #users do
  local user, trace, ub = users[u], ARGV[u * 3 + 2], ARGV[u * 3 + 3]
  local uk = line_ukey(line, user, tonumber(ub))
  local held = helds[u] or nil
  local rec = (not held) and recs[u] or nil
  local r = rec and cmsgpack.unpack(rec)
  local refuse = held or (r and (r[1] == 'rejected' or (#r - 4) >= limit)) or soldout or (cap > 0 and line.w >= cap)
  local waiting = nil
  if refuse or redis.call('HSETNX', uk, user, seq + 1) == 0 then
    waiting = redis.call('HGET', uk, user)
    waiting = waiting and tonumber(waiting)
  end
  if waiting and soldout then
    decided(waiting, 'rejected')
  elseif waiting then
    flush()
    codes[#codes + 1] = '1'
    extras[#extras + 1] = waiting; extras[#extras + 1] = line_position(line, user, waiting)
  elseif held then
    decided(tonumber(held), 'in_flight')
  elseif r and (r[1] == 'rejected' or (#r - 4) >= limit) then
    decided(r[2], r[1])
  elseif soldout then
    codes[#codes + 1] = '2'
  elseif cap > 0 and line.w >= cap then
    codes[#codes + 1] = '3'
    extras[#extras + 1] = line.w
  else
    -- HSETNX put the user in the index with entry seq + 1.
    seq = seq + 1
    local n = seq
    local b = math.floor(n / BUCKET)
    if n % BUCKET == 0 or n == 1 then
      -- The first entry of an order bucket extends the tree of those out
      -- of line to cover it.
      local sets, size = out_grow(line, b + 1)
      out_add(line, b + 1, 0, sets, size)
    end
    local args = pairs_of[b]
    if not args then
      args = {}
      pairs_of[b] = args
      buckets[#buckets + 1] = b
    end
    args[#args + 1] = n % BUCKET
    args[#args + 1] = user
    pending = pending + 1
    line.w = line.w + 1
    if trace ~= '' then
      redis.call('HSET', KEYS[9], user, trace)
    end
    if not first then first = n end
    admitted = admitted + 1
    if n == seq0 + admitted and line.w == w0 + admitted then
      codes[#codes + 1] = '0'
    else
      codes[#codes + 1] = '5'
      extras[#extras + 1] = n; extras[#extras + 1] = line.w
    end
  end
end
if first then
  flush()
  line_close(line)
  local last = redis.call('ZREVRANGE', KEYS[6], 0, 0)
  if #last == 0 or now >= tonumber(last[1]) + 10 then
    redis.call('ZADD', KEYS[6], 'NX', first, ARGV[2])
  end
end
local out = {claimed, seq0, w0, table.concat(codes)}
for _, x in ipairs(extras) do out[#out + 1] = x end
return out
