-- wrk script for run.sh's set-up (not measured): POSTs each line of BENCH_LINES once, after
-- BODY_PREFIX, and keeps one field of each answer. It pre-issues refresh and access tokens
-- and registers the SCALE clients and identity providers through the admin API.
--   BENCH_LINES   one value per line (or whole bodies, with an empty BODY_PREFIX)
--   BODY_PREFIX   the body before the value
--   CONTENT_TYPE  default application/x-www-form-urlencoded
--   AUTH          the whole Authorization header, when one is needed
--   CAPTURE       the JSON string field kept from each answer, e.g. refresh_token
--   CAPTURE_OUT   where the captured values go, one a line; the answers without it (status and
--                 body) go to CAPTURE_OUT.failed; CAPTURE_OUT.sent appears once every line was
--                 sent, CAPTURE_OUT.done once every line had its answer
--   FILLER_PATH   what to GET once every line was sent (wrk cannot stop on its own; lib.sh's
--                 bench_issue interrupts it when .done appears — or, should a request be lost
--                 to a broken connection, when nothing more comes in after .sent)
-- Run it with one wrk thread (-t1), so that one file is written.
local lines = {}
for line in io.lines(os.getenv("BENCH_LINES")) do
  lines[#lines + 1] = line
end
local prefix = os.getenv("BODY_PREFIX") or ""
local field = os.getenv("CAPTURE")
local pattern = '"' .. field .. '":"([^"]+)"'
local out = assert(io.open(os.getenv("CAPTURE_OUT"), "w"))
local base = os.getenv("CAPTURE_OUT")
local failures = assert(io.open(base .. ".failed", "w"))
local filler = os.getenv("FILLER_PATH") or "/health"
local next_one = 0
local captured, failed = 0, 0

wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE") or "application/x-www-form-urlencoded"
local auth = os.getenv("AUTH")
if auth ~= nil and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

local function mark(name, text)
  local f = assert(io.open(base .. "." .. name, "w"))
  f:write(text)
  f:close()
end

-- wrk calls request() once before the run to check it (for the first thread): that call must
-- not use up a line.
local checked = false
request = function()
  if not checked then
    checked = true
    return wrk.format(nil, nil, nil, prefix .. lines[1])
  end
  next_one = next_one + 1
  if next_one > #lines then
    if next_one == #lines + 1 then
      mark("sent", "")
    end
    return wrk.format("GET", filler, {}, nil)
  end
  return wrk.format(nil, nil, nil, prefix .. lines[next_one])
end

response = function(status, headers, body)
  if captured + failed >= #lines then
    return
  end
  local value = string.match(body, pattern)
  if status < 300 and value then
    out:write(value, "\n")
    out:flush()
    captured = captured + 1
  elseif status >= 400 then
    failed = failed + 1
    failures:write(status, " ", string.sub(string.gsub(body, "\n", " "), 1, 300), "\n")
    failures:flush()
  end
  if captured + failed == #lines then
    mark("done", string.format("captured=%d failed=%d\n", captured, failed))
  end
end
