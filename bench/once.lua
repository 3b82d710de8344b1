-- wrk script: POSTs the lines of the file named by BENCH_LINES (pre-minted assertions,
-- refresh tokens, access tokens…), each after the form prefix BODY_PREFIX. Used by load.sh and run.sh.
--   BENCH_LINES  one value per line; each request sends the next one
--   BODY_PREFIX  the form before the value, e.g. "grant_type=refresh_token&refresh_token="
--   CLIENT_BASIC when set, the base64 of client_id:client_secret for a Basic header
--   CYCLE        when "1", starting over at the end of the file is intended (introspecting the
--                same tokens again); otherwise each line is meant to be sent once, and every
--                request past the end (a replay, which the server must refuse) is counted in
--                `reused`: raise the number of lines minted beforehand
--   EXPECT       when set, a 2xx answer whose body lacks this text counts as an error
--                (`unexpected`), e.g. '"active":true' for introspection
--   THREADS      wrk's -t: with several threads, thread k sends lines k, k+THREADS, …
-- done() prints one line:
--   RESULT req_per_s=… p50_ms=… p99_ms=… errors=… reused=… unexpected=… requests=…
--          error_kinds=status:…,connect:…,read:…,write:…,timeout:…
-- errors counts wrk's (non-2xx/3xx, connect, read, write, timeout) and `unexpected`, and
-- error_kinds splits wrk's part (a `timeout` is a request unanswered after wrk's 2 s); `reused`
-- is apart (a refused replay is also a non-2xx). ASSERTIONS is read when BENCH_LINES is not
-- set, for load.sh's older interface.
local file = os.getenv("BENCH_LINES") or os.getenv("ASSERTIONS")
local all = {}
for line in io.lines(file) do
  all[#all + 1] = line
end
local lines = all
local prefix = os.getenv("BODY_PREFIX") or ""
local cycle = os.getenv("CYCLE") == "1"
local expect = os.getenv("EXPECT")
local next_one = 0
reused = 0
unexpected = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local basic = os.getenv("CLIENT_BASIC")
if basic ~= nil and basic ~= "" then
  wrk.headers["Authorization"] = "Basic " .. basic
end

-- wrk calls request() once before the run to check it, in the first thread only: that call must
-- not use up a line, and in the other threads the first call is a real request (skipping it
-- there sent each of those threads' first line twice: one refused replay per extra thread).
local checked = false

local threads = {}
setup = function(thread)
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
end

init = function(args)
  checked = tid ~= nil and tid > 1
  local n = tonumber(os.getenv("THREADS") or "1") or 1
  if n > 1 and tid then
    lines = {}
    for i = tid, #all, n do
      lines[#lines + 1] = all[i]
    end
    all = nil
  end
end

request = function()
  if not checked then
    checked = true
    return wrk.format(nil, nil, nil, prefix .. lines[1])
  end
  next_one = next_one + 1
  if next_one > #lines then
    next_one = 1
  end
  return wrk.format(nil, nil, nil, prefix .. lines[next_one])
end

if not cycle then
  -- Counting replays here rather than in request(): a response is one request done.
  local sent = 0
  response = function(status, headers, body)
    sent = sent + 1
    if sent > #lines then
      reused = reused + 1
    end
    if expect and status < 300 and not string.find(body, expect, 1, true) then
      unexpected = unexpected + 1
    end
  end
elseif expect and expect ~= "" then
  response = function(status, headers, body)
    if status < 300 and not string.find(body, expect, 1, true) then
      unexpected = unexpected + 1
    end
  end
end

done = function(summary, latency, requests)
  local r, u = 0, 0
  for _, thread in ipairs(threads) do
    r = r + (tonumber(thread:get("reused")) or 0)
    u = u + (tonumber(thread:get("unexpected")) or 0)
  end
  io.write(string.format(
    "RESULT req_per_s=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d reused=%d unexpected=%d requests=%d"
      .. " error_kinds=status:%d,connect:%d,read:%d,write:%d,timeout:%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout + u,
    r, u, summary.requests, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout))
end
