-- Admit many users of one campaign in one round trip, in the order given
-- (entry numbers follow that order, so FIFO stays exact).
-- KEYS: 1 seq, 2 line, 3 held, 4 done, 5 soldout, 6 clock
-- ARGV: 1 per-user limit, 2 now (unix ms), 3.. users
-- Returns six values per user, as admit.lua returns for one.
local limit = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local soldout = redis.call('EXISTS', KEYS[5]) == 1
local out = {}
local first = nil
local function put(code, entry, position, state, reason, id)
  out[#out + 1] = code; out[#out + 1] = entry; out[#out + 1] = position
  out[#out + 1] = state; out[#out + 1] = reason; out[#out + 1] = id
end
for i = 3, #ARGV do
  local user = ARGV[i]
  local waiting = redis.call('ZSCORE', KEYS[2], user)
  local held = (not waiting) and redis.call('HGET', KEYS[3], user)
  local rec = (not waiting and not held) and redis.call('HGET', KEYS[4], user)
  local r = rec and cmsgpack.unpack(rec)
  if waiting and soldout then
    put(1, tonumber(waiting), 0, 'rejected', 'sold_out', '')
  elseif waiting then
    put(1, tonumber(waiting), redis.call('ZRANK', KEYS[2], user) + 1, 'waiting', '', '')
  elseif held then
    put(1, tonumber(held), 0, 'in_flight', '', '')
  elseif r and (r[1] == 'rejected' or (#r - 4) >= limit) then
    put(1, r[2], 0, r[1], r[3], r[4])
  elseif soldout then
    put(2, 0, 0, '', '', '')
  else
    local n = redis.call('INCR', KEYS[1])
    redis.call('ZADD', KEYS[2], n, user)
    if not first then first = n end
    put(0, n, redis.call('ZCARD', KEYS[2]), 'waiting', '', '')
  end
end
if first then
  local last = redis.call('ZREVRANGE', KEYS[6], 0, 0)
  if #last == 0 or now >= tonumber(last[1]) + 10 then
    redis.call('ZADD', KEYS[6], first, ARGV[2])
  end
end
return out
