-- wrk script: POST /api/v1/breach-check/ with e-mails drawn at random from a file.
--
-- Environment:
--   LOADTEST_KEY     the API key (sent as Authorization: Bearer KEY)
--   LOADTEST_EMAILS  a file of e-mails, one a line (the runner writes present and absent
--                    ones in equal numbers)
--   LOADTEST_PATH    the path (default /api/v1/breach-check/)
-- Bodies are built once per thread at start-up, so the run measures the server, not
-- string building in the load generator.

local common = dofile(os.getenv("LOADTEST_DIR") .. "/common.lua")

local path = os.getenv("LOADTEST_PATH") or "/api/v1/breach-check/"
local key = os.getenv("LOADTEST_KEY") or error("LOADTEST_KEY is not set")
local file = os.getenv("LOADTEST_EMAILS") or error("LOADTEST_EMAILS is not set")
local requests = {}

function setup(thread)
  common.setup(thread)
end

function init(args)
  common.seed()
  local headers = {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
  }
  for line in io.lines(file) do
    if line ~= "" then
      -- E-mails from the generator need no JSON escaping beyond quotes and
      -- backslashes; escape those anyway.
      local escaped = line:gsub('\\', '\\\\'):gsub('"', '\\"')
      requests[#requests + 1] = wrk.format("POST", path, headers, '{"email":"' .. escaped .. '"}')
    end
  end
  if #requests == 0 then
    error("no e-mails in " .. file)
  end
end

function request()
  return requests[math.random(#requests)]
end

done = common.done
