-- wrk script: POST /api/tasks with one reminder (the default one at the due time).
--   TOKEN=$(duetime token bench) wrk -t1 -c16 -d10s -s bench/wrk_create_task.lua http://127.0.0.1:8000
-- The due time is fixed far in the future so every request schedules one job.
wrk.method = "POST"
wrk.path = "/api/tasks"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = '{"title": "wrk task", "due_at": "2099-01-01T09:00:00Z"}'

local non201 = 0
response = function(status, headers, body)
  if status ~= 201 then
    non201 = non201 + 1
    if non201 <= 3 then io.stderr:write("unexpected " .. status .. ": " .. body .. "\n") end
  end
end
