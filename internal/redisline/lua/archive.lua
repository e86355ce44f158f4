-- Put a finished campaign away: unless entries wait or are in flight, set
-- every key of the campaign to expire after the retention, or delete them
-- all now. Nothing is written when the campaign is busy.
-- KEYS: 1 line, 2 flight, then every other key of the campaign
-- ARGV: 1 retention (ms; 0 deletes now)
-- Returns how many of the keys existed, or the error
-- COUPONQ_BUSY <waiting> <in flight>.
-- The line's buckets (line.lua) exist only while someone waits, so a
-- campaign nobody waits in has none left to put away; line and flight do
-- not exist either then (put away all the same, to be sure).
local waiting = tonumber(redis.call('GET', KEYS[1]) or '0')
local flight = redis.call('ZCARD', KEYS[2])
if waiting > 0 or flight > 0 then
  return redis.error_reply('COUPONQ_BUSY ' .. waiting .. ' ' .. flight)
end
local ms = tonumber(ARGV[1])
local n = 0
for i = 1, #KEYS do
  if ms > 0 then
    n = n + redis.call('PEXPIRE', KEYS[i], ms)
  else
    n = n + redis.call('UNLINK', KEYS[i])
  end
end
return n
