-- Apply the next chunk of a campaign's pre-queue seating (Queue.Seat): the
-- Fisher–Yates swaps of couponq.SeatSwaps for the steps from the recorded
-- step on, each exchanging the users waiting at entry numbers i and j. The
-- numbers stay with the places, and with them the admission times (the
-- clock checkpoints are by number); a user's index entry and order bucket
-- membership follow the user, and so does its trace (kept by user). A swap
-- where i == j, or where either number is not waiting, changes nothing but
-- still counts as a step. Swapping two waiting users changes no bucket's
-- count of those out of line, so the tree is not written.
-- KEYS: 1 seat (hash: seed, n, step, done; seat_begin.lua), 2 line (the
--       line's buckets are named from it: line.lua)
-- ARGV: 1 the step the chunk starts at, then i, j pairs: the swaps of that
--       step and the ones after it, in order
-- Returns {1, step, done} once applied, step being the recorded step after
-- the chunk and done 1 when it reached max(n - 1, 0); or {0, step, done},
-- writing nothing, when the recorded step is not ARGV[1] (another seater
-- went on, or the seating is done); or the error COUPONQ_SEAT when there
-- is no seating or the chunk does not fit it.
-- Every read and check comes before the first write: the whole chunk is
-- played on the places it reads (one read per place), then each place
-- whose user changed is written once. (Only a line whose invariant is
-- broken reads again after that: the tree, to set its counts right.)
local st = redis.call('HMGET', KEYS[1], 'n', 'step', 'done')
if not st[1] then
  return redis.error_reply('COUPONQ_SEAT no seating begun')
end
local n, step = tonumber(st[1]), tonumber(st[2])
local last = math.max(n - 1, 0)
if st[3] == '1' or step ~= tonumber(ARGV[1]) then
  return {0, step, tonumber(st[3])}
end
local count = (#ARGV - 1) / 2
if count ~= math.floor(count) or step + count > last then
  return redis.error_reply('COUPONQ_SEAT ' .. count .. ' swaps from step ' .. step .. ' of ' .. last)
end
-- The swap of step s exchanges i = n - s with some j in 1..i.
for k = 0, count - 1 do
  local i, j = tonumber(ARGV[2 + 2 * k]), tonumber(ARGV[3 + 2 * k])
  if i ~= n - (step + k) or not j or j < 1 or j > i or j ~= math.floor(j) then
    return redis.error_reply('COUPONQ_SEAT step ' .. (step + k) .. ' of ' .. n .. ' entries cannot swap ' ..
      tostring(ARGV[2 + 2 * k]) .. ' and ' .. tostring(ARGV[3 + 2 * k]))
  end
end

local line = line_open(KEYS[2])
-- at[p] is the user at place p as the chunk plays out, was[p] the one
-- waiting there before it; false: nobody waits at p.
local at, was = {}, {}
local function place(p)
  local u = at[p]
  if u == nil then
    local b = math.floor(p / BUCKET)
    local r = redis.call('ZRANGEBYSCORE', line.base .. 'q:' .. b, p % BUCKET, p % BUCKET)
    u = false
    if r[1] then
      if line_lookup(line, r[1]) == p then
        u = r[1]
      else
        -- Its index does not map it to p (it cannot while the invariant
        -- holds): it does not wait at p, so p is left alone.
        redis.log(redis.LOG_WARNING, 'couponq: ' .. line.key .. ': ' .. r[1] .. ' is in the bucket of entry ' .. p .. ' but not indexed there')
      end
    end
    at[p], was[p] = u, u
  end
  return u
end
for k = 0, count - 1 do
  local i, j = tonumber(ARGV[2 + 2 * k]), tonumber(ARGV[3 + 2 * k])
  if i ~= j then
    local ui, uj = place(i), place(j)
    if ui and uj then
      at[i], at[j] = uj, ui
    end
  end
end

local moved = {}
for p, u in pairs(at) do
  if u ~= was[p] then moved[#moved + 1] = p end
end
table.sort(moved)
-- Every user that moves leaves its bucket first and then joins its new
-- place's, so two places of one bucket trade users as well as two of
-- different buckets. The counts follow what ZREM and ZADD report: they
-- balance, bucket by bucket, while the invariant holds.
local gone = {}
for _, p in ipairs(moved) do
  local b = math.floor(p / BUCKET)
  gone[b] = (gone[b] or 0) + redis.call('ZREM', line.base .. 'q:' .. b, was[p])
end
for _, p in ipairs(moved) do
  local b, u = math.floor(p / BUCKET), at[p]
  gone[b] = (gone[b] or 0) - redis.call('ZADD', line.base .. 'q:' .. b, p % BUCKET, u)
  redis.call('HSET', line_ukey(line, u), u, p)
end
for b, d in pairs(gone) do
  if d ~= 0 then
    redis.log(redis.LOG_WARNING, 'couponq: ' .. line.key .. ': seating changed bucket ' .. b .. ' by ' .. -d)
    out_count(line, b + 1, d, true)
  end
end
line_close(line)

step = step + count
local done = 0
if step >= last then done = 1 end
redis.call('HSET', KEYS[1], 'step', step, 'done', done)
return {1, step, done}
