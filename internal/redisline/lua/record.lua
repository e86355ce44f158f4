-- Record decided outcomes. A user's status follows their latest entry; a
-- decided entry keeps its first outcome except that an issuance replaces a
-- rejection; a duplicate rejection never replaces an issued status; a result
-- for an older entry only counts toward the user's issuances.
-- KEYS: 1 line, 2 flight, 3 held, 4 done, 5 issued (count of distinct entries recorded as issued),
--       6 trace (the carriers of traced entries, dropped once decided); the
--       line's buckets are named from KEYS[1] (line.lua)
-- ARGV: user, entry, state, reason, issuance id (five per result)
-- done records are msgpack arrays {state, entry, reason, id, issued entry...}.
for i = 1, #ARGV, 5 do
  local state = ARGV[i + 2]
  if state ~= 'issued' and state ~= 'rejected' then
    return redis.error_reply('couponq: record of non-terminal state ' .. state)
  end
end
local line = line_open(KEYS[1])
local traced = redis.call('EXISTS', KEYS[6]) == 1
for i = 1, #ARGV, 5 do
  local user, n, state, reason, id = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local issued = state == 'issued'
  local waiting, uk = line_lookup(line, user)
  local held = redis.call('HGET', KEYS[3], user)
  local rec = redis.call('HGET', KEYS[4], user)
  local r = rec and cmsgpack.unpack(rec) or nil

  local latest = waiting or (held and tonumber(held)) or (r and r[2]) or n
  local nums = {}
  local counted = false
  if r then
    for j = 5, #r do
      nums[#nums + 1] = r[j]
      if r[j] == n then counted = true end
    end
  end
  if issued and not counted then
    nums[#nums + 1] = n
    redis.call('INCR', KEYS[5])
  end

  if waiting and waiting == n then
    line_remove(line, user, n, uk)
  end
  if held and tonumber(held) == n then
    redis.call('HDEL', KEYS[3], user)
    redis.call('ZREM', KEYS[2], user)
  end

  local nr
  if n < latest then
    if r then
      nr = {r[1], r[2], r[3], r[4]}
    else
      nr = {state, n, reason, id}
    end
  elseif r and r[2] == n and (r[1] == 'issued' or not issued) then
    nr = {r[1], r[2], r[3], r[4]}
  elseif r and r[1] == 'issued' and reason == 'duplicate' then
    nr = {r[1], r[2], r[3], r[4]}
  else
    nr = {state, n, reason, id}
  end
  for _, v in ipairs(nums) do nr[#nr + 1] = v end
  redis.call('HSET', KEYS[4], user, cmsgpack.pack(nr))
  if traced and n >= latest then
    redis.call('HDEL', KEYS[6], user)
  end
end
line_close(line)
return 0
