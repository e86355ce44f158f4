-- Where a user's latest entry stands.
-- KEYS: 1 line, 2 held, 3 done, 4 soldout, 5 flight, 6 issued (the line's
--       buckets are named from KEYS[1]: line.lua)
-- ARGV: 1 user, 2 the user's index bucket (line.lua's line_ukey; '' or
--       absent: hashed here)
-- Returns {state, entry, position, reason, issuance id, claimed}, or nil if
-- none; claimed = units issued or in flight, for a waiting entry (else -1).
local user = ARGV[1]
local line = line_open(KEYS[1])
local waiting = line_lookup(line, user, tonumber(ARGV[2] or ''))
if waiting then
  if redis.call('EXISTS', KEYS[4]) == 1 then
    return {'rejected', waiting, 0, 'sold_out', '', -1}
  end
  local claimed = tonumber(redis.call('GET', KEYS[6]) or '0') + redis.call('ZCARD', KEYS[5])
  return {'waiting', waiting, line_position(line, user, waiting), '', '', claimed}
end
local held = redis.call('HGET', KEYS[2], user)
if held then
  return {'in_flight', tonumber(held), 0, '', '', -1}
end
local rec = redis.call('HGET', KEYS[3], user)
if rec then
  local r = cmsgpack.unpack(rec)
  return {r[1], r[2], 0, r[3], r[4], -1}
end
return false
