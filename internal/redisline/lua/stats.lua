-- Count a campaign's entries by where they are, in one round trip.
-- KEYS: 1 seq, 2 line, 3 flight, 4 issued, 5 soldout (the line's buckets
--       are named from KEYS[2]: line.lua)
-- Returns {admitted, waiting, in flight, issued, sold out (0 or 1), head}:
-- head is the lowest waiting entry number, 0 when nobody waits.
local line = line_open(KEYS[2])
local head = 0
local b = line_head(line)
if b then
  local r = redis.call('ZRANGE', line.base .. 'q:' .. b, 0, 0, 'WITHSCORES')
  if r[2] then
    head = b * BUCKET + tonumber(r[2])
  end
end
return {
  tonumber(redis.call('GET', KEYS[1]) or 0),
  line.w,
  redis.call('ZCARD', KEYS[3]),
  tonumber(redis.call('GET', KEYS[4]) or 0),
  redis.call('EXISTS', KEYS[5]),
  head,
}
