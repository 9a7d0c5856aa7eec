-- wrk script for bench/load.sh: a realistic mix of the mobile app's requests, each sent as a
-- person picked at random from the file `vicinity-bench tokens` writes (one a line, tab-
-- separated: access token, latitude, longitude, the venue they are at).
--
--   VICINITY_LOAD_SUMMARY=summary.txt wrk -t2 -c32 -d300s -s bench/load.lua http://127.0.0.1:PORT -- people.tsv
--
-- The mix, in percent of requests:
--   45  GET  /v1/me/nearby?radius=1000          who of my friends is near (the app's main screen)
--   25  GET  /v1/feed?limit=20                  friends' recent check-ins
--    5  POST /v1/checkins                       at the venue the person is at, with a fresh
--                                               Idempotency-Key (shout "load test", so the
--                                               script can remove them afterwards)
--   15  PUT  /v1/me/location                    a few metres from where the person is
--   10  GET  /v1/venues/search?ll=…&radius=1000 around a point up to 500 m from the person
-- that is 70 % reads of nearby and feeds, 20 % check-ins and location updates, 10 % venue
-- search. Every request is valid for its person (positions stay within the plausible-travel
-- and check-in reach rules), so any answer outside 2xx is a finding.
--
-- wrk runs one Lua state per thread. Each counts the requests it sends by kind and the answers
-- it receives by status; done() adds the threads' counts up, prints them and writes them to
-- the file VICINITY_LOAD_SUMMARY names (one `name value` or `name key value` a line) for
-- bench/load.sh to check.

local mix = {
  { kind = "nearby", weight = 45 },
  { kind = "feed", weight = 25 },
  { kind = "checkin", weight = 5 },
  { kind = "location", weight = 15 },
  { kind = "search", weight = 10 },
}

local SHOUT = "load test"
local SUMMARY_FILE = os.getenv("VICINITY_LOAD_SUMMARY")
local METRES_PER_DEGREE = 111320

-- Main state: the threads, to read their counts back in done().
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

-- Thread state.
local people = {}
local sequence = 0
local run = 0

-- Globals so that done() can read them through thread:get.
sent = {}
statuses = {}
failures = {}

function init(args)
  local file = args[1] or error("usage: wrk … -s bench/load.lua URL -- PEOPLE_FILE")
  for line in io.lines(file) do
    local token, lat, lng, venue = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)$")
    if token then
      table.insert(people, {
        auth = "Bearer " .. token,
        lat = tonumber(lat),
        lng = tonumber(lng),
        venue = venue,
      })
    end
  end
  if #people == 0 then
    error("no people in " .. file)
  end
  run = os.time()
  math.randomseed(run * 1000 + (thread_number or 0))
  for _, m in ipairs(mix) do
    sent[m.kind] = 0
  end
end

-- A point `metres` at most from (lat, lng), in a random direction.
local function near(lat, lng, metres)
  local angle = math.random() * 2 * math.pi
  local distance = math.random() * metres
  local dlat = distance * math.cos(angle) / METRES_PER_DEGREE
  local dlng = distance * math.sin(angle) / (METRES_PER_DEGREE * math.cos(math.rad(lat)))
  return lat + dlat, lng + dlng
end

local function location_json(lat, lng)
  return string.format('{"lat":%.7f,"lng":%.7f,"accuracy_m":15}', lat, lng)
end

local function pick_kind()
  local r = math.random(100)
  for _, m in ipairs(mix) do
    if r <= m.weight then
      return m.kind
    end
    r = r - m.weight
  end
  return mix[1].kind
end

function request()
  local person = people[math.random(#people)]
  local kind = pick_kind()
  sent[kind] = sent[kind] + 1
  local headers = { ["Authorization"] = person.auth }
  if kind == "nearby" then
    return wrk.format("GET", "/v1/me/nearby?radius=1000", headers)
  elseif kind == "feed" then
    return wrk.format("GET", "/v1/feed?limit=20", headers)
  elseif kind == "checkin" then
    sequence = sequence + 1
    headers["Content-Type"] = "application/json"
    headers["Idempotency-Key"] = string.format("load-%d-%d-%d", run, thread_number or 0, sequence)
    local lat, lng = near(person.lat, person.lng, 10)
    local body = string.format('{"venue_id":"%s","location":%s,"shout":"%s"}',
      person.venue, location_json(lat, lng), SHOUT)
    return wrk.format("POST", "/v1/checkins", headers, body)
  elseif kind == "location" then
    headers["Content-Type"] = "application/json"
    local lat, lng = near(person.lat, person.lng, 10)
    return wrk.format("PUT", "/v1/me/location", headers,
      string.format('{"location":%s}', location_json(lat, lng)))
  else
    local lat, lng = near(person.lat, person.lng, 500)
    return wrk.format("GET", string.format("/v1/venues/search?ll=%.6f,%.6f&radius=1000", lat, lng),
      headers)
  end
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status >= 300 and #failures < 5 then
    table.insert(failures, status .. " " .. string.sub(body or "", 1, 300))
  end
end

local function add_up(name)
  local total = {}
  for _, thread in ipairs(threads) do
    for key, count in pairs(thread:get(name) or {}) do
      total[key] = (total[key] or 0) + count
    end
  end
  return total
end

local function sorted_keys(t)
  local keys = {}
  for key in pairs(t) do
    table.insert(keys, key)
  end
  table.sort(keys)
  return keys
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local out = {}
  local function record(line)
    table.insert(out, line)
  end

  io.write("\nrequests sent by kind:\n")
  local sent_total = add_up("sent")
  local all = 0
  for _, m in ipairs(mix) do
    all = all + (sent_total[m.kind] or 0)
  end
  io.write(string.format("  %-9s %9s %7s %8s\n", "kind", "sent", "share", "per s"))
  for _, m in ipairs(mix) do
    local n = sent_total[m.kind] or 0
    io.write(string.format("  %-9s %9d %6.1f%% %8.1f\n", m.kind, n, 100 * n / math.max(all, 1), n / seconds))
    record(string.format("sent %s %d", m.kind, n))
  end

  io.write("\nanswers by status:\n")
  local by_status = add_up("statuses")
  for _, status in ipairs(sorted_keys(by_status)) do
    io.write(string.format("  %d %9d\n", status, by_status[status]))
    record(string.format("status %d %d", status, by_status[status]))
  end
  local shown = 0
  for _, thread in ipairs(threads) do
    for _, failure in ipairs(thread:get("failures") or {}) do
      if shown < 5 then
        io.write("  e.g. " .. failure .. "\n")
        shown = shown + 1
      end
    end
  end

  local e = summary.errors
  io.write(string.format("\nsocket errors: connect %d, read %d, write %d, timeout %d\n",
    e.connect, e.read, e.write, e.timeout))
  for _, name in ipairs({ "connect", "read", "write", "timeout" }) do
    record(string.format("socket_error %s %d", name, e[name]))
  end

  io.write(string.format("\n%d answers in %.1f s: %.1f per second\n", summary.requests, seconds,
    summary.requests / seconds))
  io.write(string.format("latency ms: p50 %.2f, p90 %.2f, p99 %.2f, p99.9 %.2f, max %.2f\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000))
  record(string.format("answers %d", summary.requests))
  record(string.format("seconds %.3f", seconds))
  record(string.format("p50_ms %.3f", latency:percentile(50) / 1000))
  record(string.format("p90_ms %.3f", latency:percentile(90) / 1000))
  record(string.format("p99_ms %.3f", latency:percentile(99) / 1000))
  record(string.format("p999_ms %.3f", latency:percentile(99.9) / 1000))
  record(string.format("max_ms %.3f", latency.max / 1000))

  if SUMMARY_FILE then
    local f = assert(io.open(SUMMARY_FILE, "w"))
    f:write(table.concat(out, "\n") .. "\n")
    f:close()
  end
end
