-- Count a campaign's entries by where they are, in one round trip.
-- KEYS: 1 seq, 2 line, 3 flight, 4 issued, 5 soldout
-- Returns {admitted, waiting, in flight, issued, sold out (0 or 1), head}:
-- head is the lowest waiting entry number, 0 when nobody waits.
local head = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {
  tonumber(redis.call('GET', KEYS[1]) or 0),
  redis.call('ZCARD', KEYS[2]),
  redis.call('ZCARD', KEYS[3]),
  tonumber(redis.call('GET', KEYS[4]) or 0),
  redis.call('EXISTS', KEYS[5]),
  tonumber(head[2] or 0),
}
