-- wrk script: GET /range/{prefix} with random 5-hex-digit prefixes (the Pwned Passwords
-- k-anonymity range of SPEC §12; no key is needed).
--
-- Environment:
--   LOADTEST_RANGE_QUERY  appended to the path, e.g. "?mode=ntlm" (default empty)
--   LOADTEST_RANGE_PADDING=1  sends "Add-Padding: true" (answers of 800-1,000 lines)
--   LOADTEST_KEY          when set, sent as hibp-api-key (servers started with
--                         --passwords-require-key)

local common = dofile(os.getenv("LOADTEST_DIR") .. "/common.lua")

local query = os.getenv("LOADTEST_RANGE_QUERY") or ""
local padding = os.getenv("LOADTEST_RANGE_PADDING") == "1"
local key = os.getenv("LOADTEST_KEY")
local requests = {}

function setup(thread)
  common.setup(thread)
end

function init(args)
  common.seed()
  local headers = { ["User-Agent"] = "breachdex-loadtest" }
  if key and key ~= "" then
    headers["hibp-api-key"] = key
  end
  if padding then
    headers["Add-Padding"] = "true"
  end
  -- All 2^20 prefixes would take too much memory per thread; 65,536 random ones
  -- spread over the whole space are as good for a cache-cold workload.
  for i = 1, 65536 do
    local prefix = string.format("%05X", math.random(0, 0xFFFFF))
    requests[i] = wrk.format("GET", "/range/" .. prefix .. query, headers)
  end
end

function request()
  return requests[math.random(#requests)]
end

done = common.done
