-- wrk script for the assertion scenarios of load.sh. Each request sends the next of the
-- pre-minted assertions in the file named by ASSERTIONS (one per line, each with its own jti)
-- after the form prefix BODY_PREFIX; CLIENT_BASIC, when set, is the base64 of
-- client_id:client_secret for a Basic header. Running out of assertions would replay them:
-- such requests fail and are counted as errors.
local assertions = {}
for line in io.lines(os.getenv("ASSERTIONS")) do
  assertions[#assertions + 1] = line
end
local prefix = os.getenv("BODY_PREFIX")
local next_one = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local basic = os.getenv("CLIENT_BASIC")
if basic ~= nil and basic ~= "" then
  wrk.headers["Authorization"] = "Basic " .. basic
end

request = function()
  next_one = next_one % #assertions + 1
  return wrk.format(nil, nil, nil, prefix .. assertions[next_one])
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT req_per_s=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout))
end
