-- KEYS: 1 issued counter, 2 user -> count hash, 3 key -> issuance id hash
-- ARGV: 1 user, 2 key, 3 stock, 4 per-user limit, 5 new issuance id
-- Returns {outcome (1 issued, 2 already issued, 3 sold out), id, sold out after (0/1)}
local stock = tonumber(ARGV[3])
local issued = tonumber(redis.call('GET', KEYS[1]) or '0')
local id = redis.call('HGET', KEYS[3], ARGV[2])
if id then
  return {1, id, issued >= stock and 1 or 0}
end
local held = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if held >= tonumber(ARGV[4]) then
  return {2, '', issued >= stock and 1 or 0}
end
if issued >= stock then
  return {3, '', 1}
end
redis.call('INCR', KEYS[1])
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('HSET', KEYS[3], ARGV[2], ARGV[5])
return {1, ARGV[5], issued + 1 >= stock and 1 or 0}
