-- line_write.lua: writing the line (line.lua comes first): the tree of
-- those out of line, new entries, and the count.

-- out_grow (reads only) returns the BITFIELD SET arguments that extend the
-- tree to cover index x, and the new size; nil when it covers x already.
-- The new nodes that cover old indexes are those on the old last index's
-- update path; the others start at 0.
local function out_grow(l, x)
  local old = out_size(l)
  if x <= old then return nil end
  local sets = {}
  if old > 0 then
    local total = out_prefix(l, old)
    local z = old + bit.band(old, -old)
    while z <= x do
      sets[#sets + 1] = 'SET'; sets[#sets + 1] = 'i32'; sets[#sets + 1] = '#' .. (z + 1)
      sets[#sets + 1] = total - out_prefix(l, z - bit.band(z, -z))
      z = z + bit.band(z, -z)
    end
  end
  sets[#sets + 1] = 'SET'; sets[#sets + 1] = 'i32'; sets[#sets + 1] = '#0'; sets[#sets + 1] = x
  return sets, x
end

-- out_add writes sets (from out_grow, with the new size), then adds d to
-- the count of tree index x (raising the highest index counted), in one
-- BITFIELD call.
local function out_add(l, x, d, sets, size)
  local args = sets or {}
  out_size(l)
  if sets then l.size = size end
  if d > 0 and x > l.hi then
    l.hi = x
    args[#args + 1] = 'SET'; args[#args + 1] = 'i32'; args[#args + 1] = '#1'; args[#args + 1] = x
  end
  if d ~= 0 then
    local y = x
    while y <= l.size do
      args[#args + 1] = 'INCRBY'; args[#args + 1] = 'i32'; args[#args + 1] = '#' .. (y + 1); args[#args + 1] = d
      y = y + bit.band(y, -y)
    end
  end
  if #args > 0 then
    redis.call('BITFIELD', l.out, unpack(args))
  end
end

-- out_count adds d to the entries out of the line from tree index x
-- (growing the tree to x first) and takes d from those waiting: in the
-- tree at once, or, with later, at the next out_flush (many changes to one
-- bucket then cost one walk of the tree).
local function out_count(l, x, d, later)
  l.w = l.w - d
  if later then
    l.pending = l.pending or {}
    l.pending[x] = (l.pending[x] or 0) + d
    return
  end
  local sets, size = out_grow(l, x)
  out_add(l, x, d, sets, size)
end

-- out_flush writes the changes out_count left for later, bucket by bucket.
-- Whatever reads the tree comes after it.
local function out_flush(l)
  if not l.pending then return end
  local xs = {}
  for x in pairs(l.pending) do xs[#xs + 1] = x end
  table.sort(xs)
  for _, x in ipairs(xs) do
    local sets, size = out_grow(l, x)
    out_add(l, x, l.pending[x], sets, size)
  end
  l.pending = nil
end

-- line_insert puts the user in line with entry n (uk: its index bucket,
-- where the caller has already written it, or not).
local function line_insert(l, user, n, uk, indexed)
  local b = math.floor(n / BUCKET)
  local added = redis.call('ZADD', l.base .. 'q:' .. b, n % BUCKET, user)
  if not indexed then
    redis.call('HSET', uk, user, n)
  end
  return b, added
end

-- line_close writes how many wait, deleting the count once nobody does.
-- Every script that changed the line ends with it.
local function line_close(l)
  out_flush(l)
  if l.w <= 0 then
    if l.w0 > 0 then redis.call('DEL', l.key) end
  elseif l.w ~= l.w0 then
    redis.call('INCRBY', l.key, l.w - l.w0)
  end
  l.w0 = l.w
end
