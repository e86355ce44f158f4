-- Mark leased entries as held by the downstream until now + ttl. An entry
-- whose lease ran out and that is back in line is taken out again.
-- KEYS: 1 line, 2 flight, 3 held (the line's buckets are named from
--       KEYS[1]: line.lua)
-- ARGV: 1 ttl (ms), then user, entry pairs
local t = redis.call('TIME')
local deadline = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local line = line_open(KEYS[1])
for i = 2, #ARGV, 2 do
  local user, n = ARGV[i], tonumber(ARGV[i + 1])
  local held = redis.call('HGET', KEYS[3], user)
  if held and tonumber(held) == n then
    redis.call('ZADD', KEYS[2], deadline, user)
  else
    local waiting, uk = line_lookup(line, user)
    if waiting and waiting == n then
      line_remove(line, user, n, uk)
      redis.call('HSET', KEYS[3], user, n)
      redis.call('ZADD', KEYS[2], deadline, user)
    end
  end
end
line_close(line)
return 0
