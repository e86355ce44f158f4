-- Mark the end of a campaign's pre-queue (Queue.Seal): the last entry
-- number now, unless a mark is there already (the first stands).
-- KEYS: 1 seat (hash; field 'seal'), 2 seq
-- Returns 1 if this call marked, 0 if a mark was there.
local n = redis.call('GET', KEYS[2]) or '0'
return redis.call('HSETNX', KEYS[1], 'seal', n)
