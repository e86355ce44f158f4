-- Creates a campaign record at version 1 unless one exists, and counts the
-- ID's creation (Campaign.Incarnation) in a counter Delete keeps.
-- KEYS: 1 record (hash prefix:{id}:campaign), 2 creation counter (string
--       prefix:{id}:incarnation, the record's slot)
-- ARGV: 1 campaign JSON, 2 sub-line count (Campaign.Shards, at least 1)
-- Returns the incarnation, or the error COUPONQ_EXISTS if the record exists.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('COUPONQ_EXISTS campaign exists')
end
local n = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'v', 1, 'c', ARGV[1], 's', ARGV[2], 'n', n)
return n
