-- wrk script for bench/gateway_wrk.sh: every request files a new deviation
-- (the sample with a fresh deviation_id), with the bearer token and JSON
-- content type; the id counter is per wrk thread, so threads never collide.
local template = nil
local counter = 0
local thread_id = 0

function setup(thread)
        thread_id = thread_id + 1
        thread:set("tid", thread_id)
end

function init(args)
        local f = assert(io.open(args[1], "r"))
        template = f:read("*a")
        f:close()
        wrk.method = "POST"
        wrk.headers["Authorization"] = "Bearer " .. args[2]
        wrk.headers["Content-Type"] = "application/json"
end

function request()
        counter = counter + 1
        local id = string.format("00000000-0000-4000-8%03d-%012d", tid, counter)
        return wrk.format(nil, "/v1/deviations", nil, (template:gsub("@ID@", id)))
end

local statuses = {}

function response(status, headers, body)
        statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
        io.write(string.format("p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
                latency:percentile(50) / 1000, latency:percentile(90) / 1000,
                latency:percentile(99) / 1000, latency.max / 1000))
        io.write(string.format("non-2xx or socket errors: %d\n",
                summary.errors.status + summary.errors.connect + summary.errors.read +
                summary.errors.write + summary.errors.timeout))
end
