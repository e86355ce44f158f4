-- Admit many users of one campaign in one round trip, in the order given
-- (entry numbers follow that order, so FIFO stays exact).
-- KEYS: 1 seq, 2 line, 3 held, 4 done, 5 soldout, 6 clock, 7 flight, 8 issued,
--       9 trace (the line's buckets are named from KEYS[2]: line.lua)
-- ARGV: 1 per-user limit, 2 now (unix ms), 3 max waiting (0: no cap), then
--       per user: user, trace carrier ('' when untraced), the user's index
--       bucket (line.lua's line_ukey; '' to hash it here)
-- Returns the units issued or in flight (claimed, as admit.lua's seventh
-- value), then three integers per user, code, entry and position, codes as
-- admit.lua's with 1 split: 1 = repeat, waiting; 4 = repeat, not waiting
-- (in flight or decided; position 0); then, for each user answered 4, in
-- order, the state. Each user's
-- reads and checks come before that user's first write, the HSETNX that
-- puts a new user in the index (and tells a user already waiting). The
-- admitted users' entry numbers and order buckets are written together,
-- one ZADD per order bucket, before any position is read and at the end.
local limit = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local line = line_open(KEYS[2])
local soldout = redis.call('EXISTS', KEYS[5]) == 1
-- Units issued or in flight: nothing this script writes changes it.
local claimed = tonumber(redis.call('GET', KEYS[8]) or '0') + redis.call('ZCARD', KEYS[7])
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local out = {claimed}
local states = {}
local first = nil
local function put(code, entry, position)
  out[#out + 1] = code; out[#out + 1] = entry; out[#out + 1] = position
end
local function put_decided(entry, state)
  put(4, entry, 0)
  states[#states + 1] = state
end

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

for i = 4, #ARGV, 3 do
  local user, trace = ARGV[i], ARGV[i + 1]
  local uk = line_ukey(line, user, tonumber(ARGV[i + 2]))
  local held = redis.call('HGET', KEYS[3], user)
  local rec = (not held) and redis.call('HGET', KEYS[4], user)
  local r = rec and cmsgpack.unpack(rec)
  local refuse = held or (r and (r[1] == 'rejected' or (#r - 4) >= limit)) or soldout or (cap > 0 and line.w >= cap)
  local waiting = nil
  if refuse or redis.call('HSETNX', uk, user, seq + 1) == 0 then
    waiting = redis.call('HGET', uk, user)
    waiting = waiting and tonumber(waiting)
  end
  if waiting and soldout then
    put_decided(waiting, 'rejected')
  elseif waiting then
    flush()
    put(1, waiting, line_position(line, user, waiting))
  elseif held then
    put_decided(tonumber(held), 'in_flight')
  elseif r and (r[1] == 'rejected' or (#r - 4) >= limit) then
    put_decided(r[2], r[1])
  elseif soldout then
    put(2, 0, 0)
  elseif cap > 0 and line.w >= cap then
    put(3, 0, line.w)
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
    put(0, n, line.w)
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
for _, st in ipairs(states) do out[#out + 1] = st end
return out
