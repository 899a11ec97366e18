-- wrk script for the Seckill benchmark (bench/purchase-bench.ts runs it; not meant to be
-- run by hand, but it can be: see docs/benchmarks.md).
--
-- Every request is a purchase by a NEW user: a purchase by a user who already bought is
-- answered from the buyers set (200, "existing") and costs something else entirely, so
-- reusing tokens would measure the wrong path.
--
-- Settings come from the environment, because wrk passes only a script, not options:
--   BENCH_TOKEN_FILE  file with one bearer token (JWT) per line
--   BENCH_THREADS     wrk -t value, to cut the file into one slice per thread
--   BENCH_METHOD      default POST
--   BENCH_PATH        e.g. /api/sales/3/purchase
--   BENCH_ON_EXHAUSTED
--       "wrap" (default): start the slice again and count `reused` (the run then measures
--                         duplicates too; the bench reports it as a warning)
--       "idle":           send each token exactly once, then only requests to a route that
--                         does not exist (answered 404, no order); the bench ends wrk with
--                         SIGINT once the sale's queue stops growing. (wrk.thread:stop()
--                         would leave requests already prepared on other connections unsent,
--                         and wrk waits out its -d duration anyway.)
--   BENCH_ORDERS_FILE  when set, each thread writes the order id of every 2xx answer to
--                      <file>.<thread index>, one per line, so the bench can check each
--                      accepted order against the database (counts alone cannot tell a lost
--                      order from one whose answer was still in flight when wrk stopped)
--
-- wrk gives each thread its own Lua state: setup() runs in the main state and hands each
-- thread its index; init() runs in the thread's state and keeps only that thread's slice;
-- done() runs in the main state again and collects every thread's counters with thread:get.
-- The last line printed is `BENCH_RESULT <json>`, which the bench parses.

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file = os.getenv("BENCH_TOKEN_FILE")
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  method = os.getenv("BENCH_METHOD") or "POST"
  path = os.getenv("BENCH_PATH") or "/"
  idle_when_exhausted = os.getenv("BENCH_ON_EXHAUSTED") == "idle"

  -- Interleaved slices: thread k takes lines k, k+n, k+2n, ... so the slices are disjoint
  -- and equally long whatever the file length.
  tokens = {}
  local i = 0
  for line in io.lines(file) do
    if line ~= "" then
      if i % nthreads == thread_index then
        tokens[#tokens + 1] = line
      end
      i = i + 1
    end
  end
  if #tokens == 0 then
    error("no tokens for thread " .. thread_index .. " in " .. tostring(file))
  end

  -- A number, not the table: thread:get copies values between Lua states.
  token_count = #tokens
  next_token = 1
  sent = 0
  reused = 0
  counts = {}

  local orders_file = os.getenv("BENCH_ORDERS_FILE")
  if orders_file and orders_file ~= "" then
    -- Buffered C stdio: flushed when wrk exits.
    orders_out = assert(io.open(orders_file .. "." .. thread_index, "w"))
  end
end

function request()
  if next_token > #tokens then
    if idle_when_exhausted then
      return wrk.format("GET", "/bench-tokens-exhausted")
    end
    next_token = 1
  end
  local token = tokens[next_token]
  next_token = next_token + 1
  sent = sent + 1
  if sent > #tokens then
    reused = reused + 1
  end
  return wrk.format(method, path, { ["Authorization"] = "Bearer " .. token })
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  if orders_out and status >= 200 and status < 300 then
    local id = string.match(body, '"orderId":"([^"]+)"')
    if id then
      orders_out:write(id, "\n")
    end
  end
end

function done(summary, latency, requests)
  local total = {}
  local tokens_total, sent_total, reused_total = 0, 0, 0
  for _, thread in ipairs(threads) do
    local c = thread:get("counts") or {}
    for status, n in pairs(c) do
      total[status] = (total[status] or 0) + n
    end
    tokens_total = tokens_total + (thread:get("token_count") or 0)
    sent_total = sent_total + (thread:get("sent") or 0)
    reused_total = reused_total + (thread:get("reused") or 0)
  end
  local parts = {}
  for status, n in pairs(total) do
    parts[#parts + 1] = string.format('"%d":%d', status, n)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"durationUs":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latencyUs":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},' ..
      '"status":{%s},"tokens":%d,"sent":%d,"reused":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    table.concat(parts, ","), tokens_total, sent_total, reused_total))
end
