-- Replaces a campaign record if its version is the one the writer read
-- (compare and set) and its sub-line count is the stored one (fixed once
-- created: couponq.CheckChange), and moves it to the next version.
-- KEYS: 1 record (hash prefix:{id}:campaign)
-- ARGV: 1 version read, 2 campaign JSON, 3 sub-line count (Campaign.Shards,
--       at least 1)
-- Returns {new version, incarnation ("n", kept; 1 for a record without
-- it)}, or the error COUPONQ_UNKNOWN if there is no
-- record, COUPONQ_CONFLICT <stored version> if the versions differ, or
-- COUPONQ_SHARDS <stored count> if the sub-line counts differ (a record
-- without the field, from before it, has 1). Nothing is written then.
local r = redis.call('HMGET', KEYS[1], 'v', 's', 'n')
local v = r[1]
if not v then
  return redis.error_reply('COUPONQ_UNKNOWN no such campaign')
end
if v ~= ARGV[1] then
  return redis.error_reply('COUPONQ_CONFLICT ' .. v)
end
local shards = r[2] or '1'
if tonumber(shards) ~= tonumber(ARGV[3]) then
  return redis.error_reply('COUPONQ_SHARDS ' .. shards)
end
local next = tonumber(v) + 1
redis.call('HSET', KEYS[1], 'v', next, 'c', ARGV[2], 's', ARGV[3])
return {next, tonumber(r[3] or '1')}
