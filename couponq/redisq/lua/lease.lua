-- Return expired leases to the line, then lease up to max of the oldest entries.
-- KEYS: 1 line, 2 flight, 3 held, 4 done, 5 soldout, 6 clock, 7 trace
--       (the line's buckets are named from KEYS[1]: line.lua)
-- ARGV: 1 max, 2 lease ttl (ms), 3 most expired leases to recover in this call
-- Returns a flat list {user, entry, admitted-at ms, trace ('' if none), ...}
-- in entry order; on a
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
for i = 1, #popped, 2 do
  local user, n = popped[i], popped[i + 1]
  redis.call('ZADD', KEYS[2], now + ttl, user)
  redis.call('HSET', KEYS[3], user, n)
  local cp = redis.call('ZREVRANGEBYSCORE', KEYS[6], n, '-inf', 'LIMIT', 0, 1)
  out[#out + 1] = user
  out[#out + 1] = n
  out[#out + 1] = cp[1] or '0'
  out[#out + 1] = traced and redis.call('HGET', KEYS[7], user) or ''
end
return out
