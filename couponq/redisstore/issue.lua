-- Decide a batch of issue requests of one campaign, in order, as if each
-- were issued alone. Every read and decision happens before the first write,
-- so an error midway writes nothing.
-- KEYS: 1 issued counter, 2 user -> count hash, 3 key -> issuance id hash
-- ARGV: per request: user, key, per-user limit, stock, new issuance id
-- Returns per request {outcome (1 issued, 2 already issued, 3 sold out), id,
-- sold out after (0/1)}, flattened.
local issued = tonumber(redis.call('GET', KEYS[1]) or '0')
local held = {}    -- user -> count, read once then kept current
local ids = {}     -- key -> id, read once then kept current
local newUsers = {} -- user -> count to add
local newKeys = {}  -- flat key, id list to write
local out = {}
for i = 1, #ARGV, 5 do
  local user, key, limit, stock, newid = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), ARGV[i + 4]
  if ids[key] == nil then
    ids[key] = redis.call('HGET', KEYS[3], key) or false
  end
  if held[user] == nil then
    held[user] = tonumber(redis.call('HGET', KEYS[2], user) or '0')
  end
  if ids[key] then
    out[#out + 1] = 1; out[#out + 1] = ids[key]; out[#out + 1] = issued >= stock and 1 or 0
  elseif held[user] >= limit then
    out[#out + 1] = 2; out[#out + 1] = ''; out[#out + 1] = issued >= stock and 1 or 0
  elseif issued >= stock then
    out[#out + 1] = 3; out[#out + 1] = ''; out[#out + 1] = 1
  else
    issued = issued + 1
    held[user] = held[user] + 1
    newUsers[user] = (newUsers[user] or 0) + 1
    ids[key] = newid
    newKeys[#newKeys + 1] = key
    newKeys[#newKeys + 1] = newid
    out[#out + 1] = 1; out[#out + 1] = newid; out[#out + 1] = issued >= stock and 1 or 0
  end
end
if #newKeys > 0 then
  redis.call('INCRBY', KEYS[1], #newKeys / 2)
  for user, n in pairs(newUsers) do
    redis.call('HINCRBY', KEYS[2], user, n)
  end
  for j = 1, #newKeys, 1000 do -- unpack has a stack limit
    redis.call('HSET', KEYS[3], unpack(newKeys, j, math.min(j + 999, #newKeys)))
  end
end
return out
