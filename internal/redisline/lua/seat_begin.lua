-- Begin a campaign's pre-queue seating (Queue.Seat), or read how far it
-- stands: the first call records the seed and n, the last entry number
-- now, in the seat hash; a later call changes nothing and answers the
-- record, whatever its own seed.
-- n is the mark Seal left in the hash ('seal'), if any: the last entry
-- number before anyone arrived after opening.
-- KEYS: 1 seat (hash: seed, n, step, done, seal), 2 seq
-- ARGV: 1 seed (a decimal string: a uint64 does not fit a Lua number, so
--       it is stored and answered as it came, never computed with)
-- Returns {seed, n, step, done (0 or 1)}, all strings. A line of n <= 1
-- has no swap to apply: its seating is done at once.
local r = redis.call('HMGET', KEYS[1], 'seed', 'n', 'step', 'done')
if r[1] then
  return r
end
local n = redis.call('HGET', KEYS[1], 'seal') or redis.call('GET', KEYS[2]) or '0'
local done = '0'
if tonumber(n) <= 1 then done = '1' end
redis.call('HSET', KEYS[1], 'seed', ARGV[1], 'n', n, 'step', '0', 'done', done)
return {ARGV[1], n, '0', done}
