-- line_more.lua: the parts of the line's layout (line.lua and
-- line_write.lua come first) that only Lease, Ack, Release, Record and
-- LineStats use: finding the head, popping it, returning entries and
-- taking them out.

-- line_head returns the lowest order bucket where someone waits (nil if
-- nobody does): a descent of the tree over the buckets below the last one
-- it covers (log2 reads; all their numbers were admitted, so those waiting
-- below tree index y are y * 32 - 1 - out_prefix(y)), else the buckets
-- from the last one on.
local function line_head(l)
  out_flush(l)
  if l.w <= 0 then return nil end
  local size = out_size(l)
  local pos, out = 0, 0
  local step = 1
  while step * 2 < size do step = step * 2 end
  while step >= 1 do
    local y = pos + step
    if y < size then
      local t = redis.call('BITFIELD_RO', l.out, 'GET', 'i32', '#' .. (y + 1))[1]
      if y * BUCKET - 1 - (out + t) < 1 then pos = y; out = out + t end
    end
    step = step / 2
  end
  if pos + 1 < size then return pos end
  -- Nobody waits below the last bucket the tree covers: the head is there
  -- or, should the tree lag behind the entry numbers (it cannot while
  -- admissions extend it), a little after.
  for b = math.max(size - 1, 0), math.max(size - 1, 0) + 64 do
    if redis.call('EXISTS', l.base .. 'q:' .. b) == 1 then return b end
  end
  redis.log(redis.LOG_WARNING, 'couponq: ' .. l.key .. ': ' .. l.w .. ' waiting but no bucket found')
  return nil
end

-- line_admitted: how many numbers order bucket b holds when all were
-- admitted (bucket 0 starts at 1).
local function line_admitted(b)
  if b == 0 then return BUCKET - 1 end
  return BUCKET
end

-- line_remove takes the user's entry n out of the line (uk: its index bucket).
local function line_remove(l, user, n, uk)
  local b = math.floor(n / BUCKET)
  local gone = redis.call('ZREM', l.base .. 'q:' .. b, user)
  redis.call('HDEL', uk, user)
  if gone > 0 then
    out_count(l, b + 1, gone)
  end
end

-- line_put returns an entry to the line under its own number (a release,
-- an expired lease); the tree learns of it at the next out_flush. Should
-- the user wait under another number (it cannot while the invariant
-- holds), that entry makes way, as a sorted set's ZADD would move it.
local function line_put(l, user, n)
  local uk = line_ukey(l, user)
  if redis.call('HSETNX', uk, user, n) == 0 then
    local old = tonumber(redis.call('HGET', uk, user))
    if old == n then return end
    line_remove(l, user, old, uk)
    redis.call('HSET', uk, user, n)
  end
  local b, added = line_insert(l, user, n, uk, true)
  if added > 0 then
    out_count(l, b + 1, -added, true)
  end
end

-- line_pop takes up to max of the lowest entries out of the line and
-- returns them in entry order, as a flat list user, number, user, number...
local function line_pop(l, max)
  local res = {}
  local next_b = nil -- after emptying the head bucket: the next one, if anyone waits there
  while #res < 2 * max and l.w > 0 do
    local b, popped = next_b, nil
    next_b = nil
    if b then
      popped = redis.call('ZPOPMIN', l.base .. 'q:' .. b, max - #res / 2)
      if #popped == 0 then b = nil end
    end
    if not b then
      b = line_head(l)
      if not b then break end
      popped = redis.call('ZPOPMIN', l.base .. 'q:' .. b, max - #res / 2)
    end
    if #popped == 0 then
      -- The counts say someone waits in an empty bucket (they cannot while
      -- the invariant holds): set them right so the line moves on.
      local missing = line_admitted(b) - (out_prefix(l, b + 1) - out_prefix(l, b))
      redis.log(redis.LOG_WARNING, 'couponq: ' .. l.key .. ': bucket ' .. b .. ' is empty, counted ' .. missing .. ' waiting')
      if missing <= 0 or b + 1 >= out_size(l) then break end
      out_count(l, b + 1, missing)
    else
      for i = 1, #popped, 2 do
        local user = popped[i]
        redis.call('HDEL', line_ukey(l, user), user)
        res[#res + 1] = user
        res[#res + 1] = b * BUCKET + tonumber(popped[i + 1])
      end
      out_count(l, b + 1, #popped / 2)
      -- Nobody waits below b now: should more be wanted, b + 1 is the head
      -- if anyone waits there.
      next_b = b + 1
    end
  end
  return res
end

