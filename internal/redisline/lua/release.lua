-- Return entries in flight to the line at once (they keep their number, so
-- they go back to the head).
-- KEYS: 1 line, 2 flight, 3 held (the line's buckets are named from
--       KEYS[1]: line.lua)
-- ARGV: user, entry pairs
local line = line_open(KEYS[1])
for i = 1, #ARGV, 2 do
  local user, n = ARGV[i], tonumber(ARGV[i + 1])
  local held = redis.call('HGET', KEYS[3], user)
  if held and tonumber(held) == n then
    redis.call('ZREM', KEYS[2], user)
    redis.call('HDEL', KEYS[3], user)
    line_put(line, user, n)
  end
end
line_close(line)
return 0
