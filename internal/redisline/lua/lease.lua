-- Return expired leases to the line, then lease up to max of the oldest entries.
-- KEYS: 1 line, 2 flight, 3 held, 4 done, 5 soldout, 6 clock, 7 trace,
--       8 seq (the line's buckets are named from KEYS[1]: line.lua)
-- ARGV: 1 max, 2 lease ttl (ms), 3 most expired leases to recover in this call
-- Returns a flat list {user, entry, admitted-at ms (the checkpoint's, as
-- stored, '0' if none), µs after it, trace ('' if none), ...} in entry
-- order. The admission time is read from the clock checkpoints:
-- the entries from one checkpoint (n0, t0) to the next were admitted in
-- [t0, t0 + 10 ms), before the next checkpoint's time (admission writes a
-- checkpoint once 10 ms have passed), so entry n is placed evenly in that
-- span, at t0 + span * (n - n0) / (entries in the group): exact to the
-- checkpoint, and ordered within it, so lines merged by admission time
-- (package shard) interleave by time rather than by checkpoint. On a
-- sold-out campaign it resolves up to max(max, ARGV[3]) waiting entries as
-- rejected/sold_out (a bulk drain: the Store is not involved) and returns
-- nothing. Deadlines use the server's clock.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local recover = tonumber(ARGV[3])
local line = line_open(KEYS[1])
local traced = redis.call('EXISTS', KEYS[7]) == 1
local soldout = redis.call('EXISTS', KEYS[5]) == 1

local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, recover)
for _, user in ipairs(expired) do
  local n = redis.call('HGET', KEYS[3], user)
  redis.call('ZREM', KEYS[2], user)
  redis.call('HDEL', KEYS[3], user)
  if n then
    line_put(line, user, tonumber(n))
  end
end
if max <= 0 then
  line_close(line)
  return {}
end

local out = {}
if soldout then
  local popped = line_pop(line, math.max(max, recover))
  line_close(line)
  for i = 1, #popped, 2 do
    local user, n = popped[i], popped[i + 1]
    local rec = redis.call('HGET', KEYS[4], user)
    local r = {'rejected', n, 'sold_out', ''}
    if rec then
      local old = cmsgpack.unpack(rec)
      for j = 5, #old do r[#r + 1] = old[j] end
    end
    redis.call('HSET', KEYS[4], user, cmsgpack.pack(r))
    if traced then
      redis.call('HDEL', KEYS[7], user)
    end
  end
  return out
end
local popped = line_pop(line, max)
line_close(line)
-- The checkpoint group of the last entry read: entries g0 .. g1 - 1 were
-- admitted from ms (the checkpoint's string, kept exact) over span (µs).
local g0, g1, ms, span = nil, nil, '0', 0
local function admitted(n)
  if not g0 or n < g0 or n >= g1 then
    local cp = redis.call('ZREVRANGEBYSCORE', KEYS[6], n, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if not cp[1] then
      g0 = nil
      return '0', 0
    end
    ms, g0 = cp[1], tonumber(cp[2])
    local t0 = tonumber(ms)
    local nx = redis.call('ZRANGEBYSCORE', KEYS[6], '(' .. g0, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    span = 10000
    if nx[1] then
      g1 = tonumber(nx[2])
      span = math.max(0, math.min(span, (tonumber(nx[1]) - t0) * 1000))
    else
      g1 = tonumber(redis.call('GET', KEYS[8]) or '0') + 1
    end
    if g1 <= g0 then g1 = g0 + 1 end
  end
  return ms, math.floor(span * (n - g0) / (g1 - g0))
end
for i = 1, #popped, 2 do
  local user, n = popped[i], popped[i + 1]
  redis.call('ZADD', KEYS[2], now + ttl, user)
  redis.call('HSET', KEYS[3], user, n)
  out[#out + 1] = user
  out[#out + 1] = n
  local at, us = admitted(tonumber(n))
  out[#out + 1] = at
  out[#out + 1] = us
  out[#out + 1] = traced and redis.call('HGET', KEYS[7], user) or ''
end
return out
