-- wrk script: POST the JSON body held in the file named by $WRK_BODY (see scripts/wrk-bench.sh).
local path = os.getenv("WRK_BODY")
local file = assert(io.open(path or "", "rb"), "set WRK_BODY to a file holding the JSON body")
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
