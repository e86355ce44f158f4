-- Return entries in flight to the line at once (they keep their number, so
-- they go back to the head).
-- KEYS: 1 line, 2 flight, 3 held
-- ARGV: user, entry pairs
for i = 1, #ARGV, 2 do
  local user, n = ARGV[i], tonumber(ARGV[i + 1])
  local held = redis.call('HGET', KEYS[3], user)
  if held and tonumber(held) == n then
    redis.call('ZREM', KEYS[2], user)
    redis.call('HDEL', KEYS[3], user)
    redis.call('ZADD', KEYS[1], n, user)
  end
end
return 0
