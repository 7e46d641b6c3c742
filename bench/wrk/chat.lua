-- wrk script: POST /api/gateway/chat, the LuluClaw gateway's chat turn (also the bare endpoint's route).
--   wrk ... -s bench/wrk/chat.lua URL -- KEYS TAG POOL TURNS
-- KEYS   comma-separated API keys; a session always uses the same key (its workspace)
-- TAG    prefix of session ids (one per run and node, so runs never share sessions)
-- POOL   sessions per wrk thread in use at a time (the script uses 4 x connections per thread), so
--        that concurrent requests almost always hit different sessions: a session runs its turns
--        one at a time, and two requests for one session would wait on each other
-- TURNS  turns per session before the thread moves on to fresh sessions, so that histories (sent
--        to the model whole on every turn) stay short however long the run
-- Session id: TAG-<thread>-<generation>-<slot>.

local keys = {}
local tag, pool, turns = "run", 16, 10
local counter = 0
local threads = 0

function setup(thread)
  -- runs in the main state; thread:set makes a global in the thread's own state
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  for key in string.gmatch(args[1] or "", "[^,]+") do
    keys[#keys + 1] = key
  end
  tag = args[2] or tag
  pool = tonumber(args[3]) or pool
  turns = tonumber(args[4]) or turns
end

function request()
  local slot = counter % pool
  local generation = math.floor(counter / (pool * turns))
  counter = counter + 1
  local session = tag .. "-" .. tid .. "-" .. generation .. "-" .. slot
  local body = '{"message":"Hello! What can you help me with?","session_id":"' .. session .. '"}'
  return wrk.format("POST", "/api/gateway/chat", {
    ["Authorization"] = "Bearer " .. keys[(slot % #keys) + 1],
    ["Content-Type"] = "application/json",
  }, body)
end
