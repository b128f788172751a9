-- wrk script: GET /healthz, the server's trivial route (no key, no index, no log row):
-- the ceiling of the HTTP stack on this machine, measured in the same run.

local common = dofile(os.getenv("LOADTEST_DIR") .. "/common.lua")

function setup(thread)
  common.setup(thread)
end

function init(args)
  common.seed()
  wrk.method = "GET"
  wrk.path = "/healthz"
end

done = common.done
