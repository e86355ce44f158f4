-- Where a user's latest entry stands.
-- KEYS: 1 line, 2 held, 3 done, 4 soldout
-- ARGV: 1 user
-- Returns {state, entry, position, reason, issuance id}, or nil if none.
local user = ARGV[1]
local waiting = redis.call('ZSCORE', KEYS[1], user)
if waiting then
  if redis.call('EXISTS', KEYS[4]) == 1 then
    return {'rejected', tonumber(waiting), 0, 'sold_out', ''}
  end
  return {'waiting', tonumber(waiting), redis.call('ZRANK', KEYS[1], user) + 1, '', ''}
end
local held = redis.call('HGET', KEYS[2], user)
if held then
  return {'in_flight', tonumber(held), 0, '', ''}
end
local rec = redis.call('HGET', KEYS[3], user)
if rec then
  local r = cmsgpack.unpack(rec)
  return {r[1], r[2], 0, r[3], r[4]}
end
return false
