-- wrk script: every request carries `Authorization: Bearer <token>`, the tokens taken in
-- rotation from the file named by the environment variable TOKENS (one per line), each
-- thread starting at its own offset. The requests are formatted once, in init, so that
-- the load generator's cost per request does not depend on the path or the token.
-- PATHS (default: the URL's path) is a comma-separated list of paths, used in turn with
-- the tokens.
-- HEADERS (optional) adds headers to every request: "Name: value|Name: value".
-- With ONCE=1 (one thread only) the thread stops once it has had as many responses as
-- there are tokens, so that each token is sent about once (a few more requests may be in
-- flight, one per connection).
-- done() prints one JSON line: requests/s, p50, p90 and p99 in ms, errors, non-2xx.

local requests = {}
local n = 0
local i = 0
local thread_index = 0
local counter = 0

function setup(thread)
  thread:set("thread_index", counter)
  counter = counter + 1
end

function init(args)
  local file = os.getenv("TOKENS")
  local paths = {}
  for p in string.gmatch(os.getenv("PATHS") or wrk.path, "[^,]+") do
    paths[#paths + 1] = p
  end
  local extra = {}
  for h in string.gmatch(os.getenv("HEADERS") or "", "[^|]+") do
    local name, value = string.match(h, "^%s*([^:]+):%s*(.*)$")
    if name then
      extra[name] = value
    end
  end
  local k = 0
  for token in io.lines(file) do
    if token ~= "" then
      k = k + 1
      local path = paths[(k - 1) % #paths + 1]
      local headers = { ["Authorization"] = "Bearer " .. token }
      for name, value in pairs(extra) do
        headers[name] = value
      end
      requests[k] = wrk.format("GET", path, headers)
    end
  end
  n = k
  if n == 0 then
    error("no tokens in " .. tostring(file))
  end
  i = (thread_index * 997) % n
end

local once = os.getenv("ONCE") == "1"
local responses = 0

function response(status, headers, body)
  if once then
    responses = responses + 1
    if responses >= n then
      wrk.thread:stop()
    end
  end
end

function request()
  i = i + 1
  if i > n then
    i = 1
  end
  return requests[i]
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    '{"label":"%s","requests":%d,"rps":%.0f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,' ..
    '"max_ms":%.3f,"socket_errors":%d,"non_2xx":%d}\n',
    os.getenv("LABEL") or "", summary.requests, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.connect + e.read + e.write + e.timeout, e.status))
end
