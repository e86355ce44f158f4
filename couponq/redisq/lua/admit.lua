-- Admit a user to a campaign's line in one round trip.
-- KEYS: 1 seq, 2 line, 3 held, 4 done, 5 soldout, 6 clock, 7 flight, 8 issued,
--       9 trace
-- ARGV: 1 user, 2 per-user limit, 3 now (unix ms, the admission time),
--       4 max waiting (0: no cap), 5 trace carrier ('' or absent: untraced)
-- Returns {code, entry, position, state, reason, issuance id, claimed}:
--   code 0 = newly admitted, 1 = repeat (nothing written), 2 = sold out,
--   3 = line full (nothing written for either); claimed = units issued or in
--   flight, for a waiting answer (else -1).
-- Every read and check comes before the first write.
local user = ARGV[1]
local limit = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cap = tonumber(ARGV[4] or '0')
local trace = ARGV[5] or ''

local function claimed()
  return tonumber(redis.call('GET', KEYS[8]) or '0') + redis.call('ZCARD', KEYS[7])
end

local waiting = redis.call('ZSCORE', KEYS[2], user)
if waiting then
  if redis.call('EXISTS', KEYS[5]) == 1 then
    return {1, tonumber(waiting), 0, 'rejected', 'sold_out', '', -1}
  end
  return {1, tonumber(waiting), redis.call('ZRANK', KEYS[2], user) + 1, 'waiting', '', '', claimed()}
end
local held = redis.call('HGET', KEYS[3], user)
if held then
  return {1, tonumber(held), 0, 'in_flight', '', '', -1}
end
local rec = redis.call('HGET', KEYS[4], user)
if rec then
  local r = cmsgpack.unpack(rec)
  if r[1] == 'rejected' or (#r - 4) >= limit then
    return {1, r[2], 0, r[1], r[3], r[4], -1}
  end
end
if redis.call('EXISTS', KEYS[5]) == 1 then
  return {2, 0, 0, '', '', '', -1}
end
local size = redis.call('ZCARD', KEYS[2])
if cap > 0 and size >= cap then
  return {3, 0, size, '', '', '', -1}
end
local last = redis.call('ZREVRANGE', KEYS[6], 0, 0)
local c = claimed()

local n = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], n, user)
if trace ~= '' then
  redis.call('HSET', KEYS[9], user, trace)
end
-- A clock checkpoint at most every 10 ms maps entry numbers to admission
-- times, so no timestamp is stored per waiting entry.
if #last == 0 or now >= tonumber(last[1]) + 10 then
  redis.call('ZADD', KEYS[6], n, ARGV[3])
end
return {0, n, size + 1, 'waiting', '', '', c}
