-- Deletes a campaign record if its version is the one the writer read
-- (compare and delete). The creation counter stays, so the ID's next
-- creation is its next incarnation; a record from before the counter
-- (without "n") sets it to its own incarnation, 1.
-- KEYS: 1 record (hash prefix:{id}:campaign), 2 creation counter (string
--       prefix:{id}:incarnation)
-- ARGV: 1 version read
-- Returns 1, or the error COUPONQ_UNKNOWN if there is no record, or
-- COUPONQ_CONFLICT <stored version> if the versions differ.
local r = redis.call('HMGET', KEYS[1], 'v', 'n')
local v = r[1]
if not v then
  return redis.error_reply('COUPONQ_UNKNOWN no such campaign')
end
if v ~= ARGV[1] then
  return redis.error_reply('COUPONQ_CONFLICT ' .. v)
end
redis.call('SET', KEYS[2], r[2] or '1', 'NX')
redis.call('DEL', KEYS[1])
return 1
