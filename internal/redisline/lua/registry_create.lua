-- Creates a campaign record at version 1 unless one exists.
-- KEYS: 1 record (hash prefix:{id}:campaign)
-- ARGV: 1 campaign JSON, 2 sub-line count (Campaign.Shards, at least 1)
-- Returns 1, or the error COUPONQ_EXISTS if the record exists.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('COUPONQ_EXISTS campaign exists')
end
redis.call('HSET', KEYS[1], 'v', 1, 'c', ARGV[1], 's', ARGV[2])
return 1
