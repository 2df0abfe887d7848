-- wrk script: POST /api/tasks/batch with 1,000 tasks of one reminder each.
--   TOKEN=$(duetime token bench) wrk -t1 -c1 -d10s -s bench/wrk_batch.lua http://127.0.0.1:8000
-- tasks/s = requests/s × 1,000. The due time is fixed far in the future.
local size = tonumber(os.getenv("BATCH") or "1000")
local items = {}
for i = 1, size do
  items[i] = '{"title": "imported ' .. i .. '", "due_at": "2099-01-01T09:00:00Z"}'
end
wrk.method = "POST"
wrk.path = "/api/tasks/batch"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = '{"tasks": [' .. table.concat(items, ", ") .. ']}'

local non201 = 0
response = function(status, headers, body)
  if status ~= 201 then
    non201 = non201 + 1
    if non201 <= 3 then io.stderr:write("unexpected " .. status .. ": " .. body:sub(1, 300) .. "\n") end
  end
end
