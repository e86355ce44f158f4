-- Admit many users of one campaign in one round trip, in the order given
-- (entry numbers follow that order, so FIFO stays exact).
-- KEYS: 1 seq, 2 line, 3 held, 4 done, 5 soldout, 6 clock, 7 flight, 8 issued,
--       9 trace
-- ARGV: 1 per-user limit, 2 now (unix ms), 3 max waiting (0: no cap), then
--       per user: user, trace carrier ('' when untraced)
-- Returns seven values per user, as admit.lua returns for one.
local limit = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local soldout = redis.call('EXISTS', KEYS[5]) == 1
-- Units issued or in flight: nothing this script writes changes it.
local claimed = tonumber(redis.call('GET', KEYS[8]) or '0') + redis.call('ZCARD', KEYS[7])
local size = redis.call('ZCARD', KEYS[2])
local out = {}
local first = nil
local function put(code, entry, position, state, reason, id, c)
  out[#out + 1] = code; out[#out + 1] = entry; out[#out + 1] = position
  out[#out + 1] = state; out[#out + 1] = reason; out[#out + 1] = id; out[#out + 1] = c
end
for i = 4, #ARGV, 2 do
  local user, trace = ARGV[i], ARGV[i + 1]
  local waiting = redis.call('ZSCORE', KEYS[2], user)
  local held = (not waiting) and redis.call('HGET', KEYS[3], user)
  local rec = (not waiting and not held) and redis.call('HGET', KEYS[4], user)
  local r = rec and cmsgpack.unpack(rec)
  if waiting and soldout then
    put(1, tonumber(waiting), 0, 'rejected', 'sold_out', '', -1)
  elseif waiting then
    put(1, tonumber(waiting), redis.call('ZRANK', KEYS[2], user) + 1, 'waiting', '', '', claimed)
  elseif held then
    put(1, tonumber(held), 0, 'in_flight', '', '', -1)
  elseif r and (r[1] == 'rejected' or (#r - 4) >= limit) then
    put(1, r[2], 0, r[1], r[3], r[4], -1)
  elseif soldout then
    put(2, 0, 0, '', '', '', -1)
  elseif cap > 0 and size >= cap then
    put(3, 0, size, '', '', '', -1)
  else
    local n = redis.call('INCR', KEYS[1])
    redis.call('ZADD', KEYS[2], n, user)
    if trace ~= '' then
      redis.call('HSET', KEYS[9], user, trace)
    end
    size = size + 1
    if not first then first = n end
    put(0, n, size, 'waiting', '', '', claimed)
  end
end
if first then
  local last = redis.call('ZREVRANGE', KEYS[6], 0, 0)
  if #last == 0 or now >= tonumber(last[1]) + 10 then
    redis.call('ZADD', KEYS[6], first, ARGV[2])
  end
end
return out
