-- wrk script: POST a 1 KiB JSON body, HMAC-SHA256-signed (hex) in X-Signature,
-- with a unique id per request so nothing is deduplicated.
-- The signatures are precomputed by bench-ingest.sh (wrk's Lua has no HMAC):
-- it writes one "id<TAB>body<TAB>signature" line per request to BODIES.
local bodies = {}
local n = 0
local i = 0
local f = assert(io.open(os.getenv("BODIES") or "/tmp/mailroom-bodies.tsv"))
for line in f:lines() do
  local body, sig = line:match("^[^\t]*\t([^\t]*)\t(.*)$")
  n = n + 1
  bodies[n] = {body, sig}
end
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i % n + 1
  local b = bodies[i]
  wrk.headers["X-Signature"] = b[2]
  return wrk.format(nil, "/e/custom", nil, b[1])
end
