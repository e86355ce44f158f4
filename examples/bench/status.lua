-- wrk script for couponq's status poll: GET .../entries/me for users who wait
-- in the line (the bench admits p1..pN first). Each request asks for another
-- of them, spread over all N. done() prints the same JSON line as users.lua.
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  users = tonumber(args[1] or "1")
  count = 0
  s2xx, s409, s410, s503, sother = 0, 0, 0, 0, 0
end

function request()
  count = count + 1
  local n = (count * 7919 + tid * 104729) % users + 1
  return wrk.format("GET", wrk.path, { ["X-User"] = "p" .. n }, nil)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then s2xx = s2xx + 1
  elseif status == 409 then s409 = s409 + 1
  elseif status == 410 then s410 = s410 + 1
  elseif status == 503 then s503 = s503 + 1
  else sother = sother + 1 end
end

function done(summary, latency, requests)
  local c = { s2xx = 0, s409 = 0, s410 = 0, s503 = 0, sother = 0 }
  for _, t in ipairs(threads) do
    for k, _ in pairs(c) do c[k] = c[k] + (t:get(k) or 0) end
  end
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d,' ..
    '"s2xx":%d,"s409":%d,"s410":%d,"s503":%d,"sother":%d,' ..
    '"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, c.s2xx, c.s409, c.s410, c.s503, c.sother,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
