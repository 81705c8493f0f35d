-- wrk script for bench/lookup_wrk.sh.
--   file MAX TEMPLATE TOKEN: each thread files the sample under ids
--     00000000-0000-4000-8TTT-CCCCCCCCCCCC, C from 1 to MAX, then stops.
--   get MAX TOKEN DELAY_MS: GET /v1/deviations/{id} of a random one of those
--     ids (2 threads' worth), each connection waiting DELAY_MS between
--     requests, so that the rate is about connections * 1000 / DELAY_MS.
local mode, max, template, delay_ms = nil, 0, nil, 0
local counter = 0
local thread_id = 0

function setup(thread)
        thread_id = thread_id + 1
        thread:set("tid", thread_id)
end

function init(args)
        mode = args[1]
        max = tonumber(args[2])
        if mode == "file" then
                local f = assert(io.open(args[3], "r"))
                template = f:read("*a")
                f:close()
                wrk.method = "POST"
                wrk.headers["Authorization"] = "Bearer " .. args[4]
                wrk.headers["Content-Type"] = "application/json"
        else
                wrk.method = "GET"
                wrk.headers["Authorization"] = "Bearer " .. args[3]
                delay_ms = tonumber(args[4])
                math.randomseed(os.time() + tid)
        end
end

local function id_of(t, c)
        return string.format("00000000-0000-4000-8%03d-%012d", t, c)
end

function request()
        if mode == "file" then
                counter = counter + 1
                return wrk.format(nil, "/v1/deviations", nil, (template:gsub("@ID@", id_of(tid, counter))))
        end
        return wrk.format(nil, "/v1/deviations/" .. id_of(math.random(1, 2), math.random(1, max)))
end

function delay()
        return delay_ms
end

local statuses = {}

function response(status, headers, body)
        statuses[status] = (statuses[status] or 0) + 1
        if mode == "file" and counter >= max then
                wrk.thread:stop()
        end
end

function done(summary, latency, requests)
        io.write(string.format("p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
                latency:percentile(99) / 1000, latency:percentile(99.9) / 1000, latency.max / 1000))
end
