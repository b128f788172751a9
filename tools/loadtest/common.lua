-- Shared by the wrk scripts of the load test: per-thread seeding and the one-line
-- machine-readable summary that run.sh parses.

local common = {}
local next_id = 0

-- Runs in the main Lua state, once per thread, before the thread starts.
function common.setup(thread)
  next_id = next_id + 1
  thread:set("loadtest_thread", next_id)
end

-- Runs in the thread's own Lua state: a different random sequence per thread.
function common.seed()
  local id = loadtest_thread or 0
  math.randomseed(os.time() + id * 7919)
end

-- RESULT line: requests/s, latency percentiles in microseconds, and the error counts
-- (status = responses that are not 2xx or 3xx).
function common.done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.2f rps=%.0f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "errors_connect=%d errors_read=%d errors_write=%d errors_timeout=%d errors_status=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout, e.status))
end

return common
