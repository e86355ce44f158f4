-- line.lua: the layout of a campaign's waiting line and how to read it, put
-- in front of every Queue script that reads or writes the line (see
-- doc.go); line_write.lua follows it in the scripts that write the line,
-- and line_more.lua in those that take entries out of line or put them
-- back. Each script defines only what it uses, since it defines it on
-- every call.
--
-- Entry numbers run 1, 2, 3... without gaps. The line lives in keys all
-- named from the line key P:{c}:line that each script declares, so all
-- share its hash slot:
--   P:{c}:line   how many entries wait (an integer string). It exists
--                exactly while someone waits (deleted at 0), which Rest and
--                Sweep rely on.
--   P:{c}:q:<b>  order bucket b: a sorted set of the users waiting with an
--                entry number n of floor(n / 32) = b, scored n % 32; at
--                most 32 members, so Redis keeps it a short listpack (a
--                ZADD, ZRANK or ZREM walks it: 32 keeps that walk short).
--   P:{c}:u:<i>  user-index bucket i (0 <= i < 8192, from the user's
--                SHA-1): a hash user -> entry number of the waiting users of
--                that bucket (about 122 each at 1,000,000 waiting: listpacks
--                up to some 4 million).
--   P:{c}:out    a string of 32-bit counters (BITFIELD i32 #k): #0 the size
--                of a Fenwick tree whose node x >= 1 is #(x + 1), over the
--                count per order bucket of the entries out of the line
--                (leased, decided or otherwise taken out; tree index x =
--                bucket + 1); #1 the highest tree index whose count ever
--                grew (0: none). The entries waiting before bucket b >= 1
--                are b * 32 - 1 - (those out of buckets below b): log2
--                reads, or, for a bucket above the highest index counted,
--                b * 32 - 1 - (seq - waiting), as everyone out is below
--                it. Admission never changes a count (it only extends the
--                tree by one index every 32 entries, so the tree covers
--                every bucket); Lease, Ack, Release and Record do.
-- A user waits with entry n exactly when its index bucket maps it to n;
-- then q:<floor(n / 32)> holds it scored n % 32, and the counts agree.
-- The counts follow the order buckets: they change by what ZADD, ZREM and
-- ZPOPMIN report, never by what a caller believes.
--
-- The functions take the line's state l (line_open) as first argument:
-- plain locals rather than methods, which cost least to define.
local BUCKET = 32     -- entry numbers per order bucket
local UBUCKETS = 8192 -- user-index buckets

-- line_open reads how many wait: the first read of every script that
-- changes the line, so a key of another type (an older layout) fails it
-- before anything is written.
local function line_open(key)
  local w = tonumber(redis.call('GET', key) or '0')
  local base = string.sub(key, 1, -5)
  return {key = key, base = base, out = base .. 'out', seq = base .. 'seq', w = w, w0 = w}
end

-- line_ukey: the user's index bucket: the first 16 bits of the user's
-- SHA-1 modulo UBUCKETS, or b when the caller computed it (the admission
-- scripts take it from the client, which hashes faster than Lua).
local function line_ukey(l, user, b)
  if not b then
    b = tonumber(string.sub(redis.sha1hex(user), 1, 4), 16) % UBUCKETS
  end
  return l.base .. 'u:' .. b
end

-- line_lookup returns the user's waiting entry number (nil if not waiting)
-- and the user's index bucket (b, if given, as in line_ukey).
local function line_lookup(l, user, b)
  local uk = line_ukey(l, user, b)
  local n = redis.call('HGET', uk, user)
  return n and tonumber(n), uk
end

-- out_size: the tree's size; out_hi: the highest tree index whose count
-- ever grew (read once per script).
local function out_size(l)
  if not l.size then
    local r = redis.call('BITFIELD_RO', l.out, 'GET', 'i32', '#0', 'GET', 'i32', '#1')
    l.size, l.hi = r[1], r[2]
  end
  return l.size
end
local function out_hi(l)
  out_size(l)
  return l.hi
end

-- line_layout_check (reads only) fails the script when the line was
-- written with order buckets of another width (couponq's were 128 wide):
-- the tree then covers fewer buckets than seq entries need. Lines of fewer
-- than 32 entries read the same either way. The admission scripts call it
-- before their first write.
local function line_layout_check(l, seq)
  if seq >= BUCKET and out_size(l) < math.floor(seq / BUCKET) + 1 then
    return redis.error_reply('couponq: ' .. l.key .. ' holds a line written with order buckets of another width: let it drain with the couponq version that wrote it')
  end
  return nil
end

-- out_prefix counts the entries out of the line from order buckets
-- 0 .. x-1 (tree indexes 1 .. x): log2(x) counters, one read (two should
-- the tree not reach x: buckets past it have nobody out).
local function out_prefix(l, x)
  if l.size and x > l.size then x = l.size end
  if x <= 0 then return 0 end
  local args = {'GET', 'i32', '#0', 'GET', 'i32', '#1'}
  local y = x
  while y > 0 do
    args[#args + 1] = 'GET'; args[#args + 1] = 'i32'; args[#args + 1] = '#' .. (y + 1)
    y = y - bit.band(y, -y)
  end
  local r = redis.call('BITFIELD_RO', l.out, unpack(args))
  l.size, l.hi = r[1], r[2]
  if x > l.size then return out_prefix(l, l.size) end
  local s = 0
  for i = 3, #r do s = s + r[i] end
  return s
end

-- line_position of the user waiting with entry n: those waiting in lower
-- buckets, plus its rank in its own bucket, plus one. l.w must be how many
-- wait, as written (or about to be, with seq). Should its bucket lack it
-- (it cannot while the invariant holds), the server log says so and the
-- answer is the bucket's first position.
local function line_position(l, user, n)
  local b = math.floor(n / BUCKET)
  local r = redis.call('ZRANK', l.base .. 'q:' .. b, user)
  if not r then
    redis.log(redis.LOG_WARNING, 'couponq: ' .. l.key .. ': ' .. user .. ' is indexed at entry ' .. n .. ' but missing from its bucket')
    r = 0
  end
  if b == 0 then return r + 1 end
  if b + 1 > out_hi(l) then
    -- Nobody is out of this bucket or a later one: all those out are below.
    return b * BUCKET - 1 - (tonumber(redis.call('GET', l.seq) or '0') - l.w) + r + 1
  end
  return b * BUCKET - 1 - out_prefix(l, b) + r + 1
end
