-- wrk script: client_credentials with client_secret_basic. CLIENT_BASIC is the base64 of
-- client_id:client_secret, passed in the environment by load.sh and run.sh. With STOP_AFTER
-- set, the (single) wrk thread stops after that many responses.
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("CLIENT_BASIC")

-- wrk counts every response that is not 2xx/3xx in errors.status; error_kinds splits the
-- errors as once.lua's RESULT line does (a `timeout` is a request unanswered after wrk's 2 s).
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT req_per_s=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d"
      .. " error_kinds=status:%d,connect:%d,read:%d,write:%d,timeout:%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.status + e.connect + e.read + e.write + e.timeout,
    e.status, e.connect, e.read, e.write, e.timeout))
end

local stop_after = tonumber(os.getenv("STOP_AFTER") or "")
if stop_after ~= nil then
  local responses = 0
  response = function()
    responses = responses + 1
    if responses == stop_after then
      -- wrk waits out -d even when its threads have stopped; SIGINT ends the wait and prints
      -- the summary as at the end of -d. os.execute is system(3), which ignores SIGINT in wrk
      -- until its shell exits: the kill comes from a background job, a moment later ($PPID of
      -- that shell, and of its subshell, is wrk).
      wrk.thread:stop()
      os.execute("(sleep 0.5; kill -INT $PPID) >/dev/null 2>&1 &")
    end
  end
end
