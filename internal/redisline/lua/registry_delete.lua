-- Deletes a campaign record if its version is the one the writer read
-- (compare and delete).
-- KEYS: 1 record (hash prefix:{id}:campaign)
-- ARGV: 1 version read
-- Returns 1, or the error COUPONQ_UNKNOWN if there is no record, or
-- COUPONQ_CONFLICT <stored version> if the versions differ.
local v = redis.call('HGET', KEYS[1], 'v')
if not v then
  return redis.error_reply('COUPONQ_UNKNOWN no such campaign')
end
if v ~= ARGV[1] then
  return redis.error_reply('COUPONQ_CONFLICT ' .. v)
end
redis.call('DEL', KEYS[1])
return 1
