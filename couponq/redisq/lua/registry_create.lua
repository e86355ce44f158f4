-- Creates a campaign record at version 1 unless one exists.
-- KEYS: 1 record (hash prefix:{id}:campaign)
-- ARGV: 1 campaign JSON
-- Returns 1, or the error COUPONQ_EXISTS if the record exists.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('COUPONQ_EXISTS campaign exists')
end
redis.call('HSET', KEYS[1], 'v', 1, 'c', ARGV[1])
return 1
