-- wrk script: GET /range/{prefix} (Pwned Passwords ranges, SPEC §12) with random
-- 5-hex-digit prefixes over the whole space.
--
-- Environment:
--   RANGE_PADDING=1   send "Add-Padding: true" (answers of 800-1,000 lines)
--   RANGE_QUERY       appended to the path, e.g. "?mode=ntlm" (default empty)
-- Requests are formatted once per thread at start-up (65,536 random prefixes), so the
-- run measures the server, not string building in the load generator.
--
-- wrk -t2 -c64 -d30s --latency -s tools/loadtest/pwned-range.lua http://127.0.0.1:PORT

local padding = os.getenv("RANGE_PADDING") == "1"
local query = os.getenv("RANGE_QUERY") or ""
local requests = {}
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

function init(args)
  math.randomseed(os.time() + (thread_id or 0) * 7919)
  local headers = { ["User-Agent"] = "breachdex-loadtest" }
  if padding then
    headers["Add-Padding"] = "true"
  end
  for i = 1, 65536 do
    local path = string.format("/range/%05X", math.random(0, 0xFFFFF)) .. query
    requests[i] = wrk.format("GET", path, headers)
  end
end

function request()
  return requests[math.random(#requests)]
end
