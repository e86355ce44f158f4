-- Admit a user to a campaign's line in one round trip.
-- KEYS: 1 seq, 2 line, 3 held, 4 done, 5 soldout, 6 clock
-- ARGV: 1 user, 2 per-user limit, 3 now (unix ms, the admission time)
-- Returns {code, entry, position, state, reason, issuance id}:
--   code 0 = newly admitted, 1 = repeat (nothing written), 2 = sold out (nothing written).
-- Every read and check comes before the first write.
local user = ARGV[1]
local limit = tonumber(ARGV[2])
local now = tonumber(ARGV[3])

local waiting = redis.call('ZSCORE', KEYS[2], user)
if waiting then
  if redis.call('EXISTS', KEYS[5]) == 1 then
    return {1, tonumber(waiting), 0, 'rejected', 'sold_out', ''}
  end
  return {1, tonumber(waiting), redis.call('ZRANK', KEYS[2], user) + 1, 'waiting', '', ''}
end
local held = redis.call('HGET', KEYS[3], user)
if held then
  return {1, tonumber(held), 0, 'in_flight', '', ''}
end
local rec = redis.call('HGET', KEYS[4], user)
if rec then
  local r = cmsgpack.unpack(rec)
  if r[1] == 'rejected' or (#r - 4) >= limit then
    return {1, r[2], 0, r[1], r[3], r[4]}
  end
end
if redis.call('EXISTS', KEYS[5]) == 1 then
  return {2, 0, 0, '', '', ''}
end
local last = redis.call('ZREVRANGE', KEYS[6], 0, 0)

local n = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], n, user)
-- A clock checkpoint at most every 10 ms maps entry numbers to admission
-- times, so no timestamp is stored per waiting entry.
if #last == 0 or now >= tonumber(last[1]) + 10 then
  redis.call('ZADD', KEYS[6], n, ARGV[3])
end
return {0, n, redis.call('ZCARD', KEYS[2]), 'waiting', '', ''}
