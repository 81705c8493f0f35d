-- wrk script for bench/lookup_wrk.sh: GET /v1/deviations/{id} of a random
-- one of the ids bench/gateway_wrk.lua filed from 2 wrk threads
-- (00000000-0000-4000-8TTT-CCCCCCCCCCCC, T 1 or 2, C from 1 to MAX), each
-- connection waiting DELAY_MS between requests, so that the rate is about
-- connections * 1000 / DELAY_MS.
-- args: MAX TOKEN DELAY_MS
local max, delay_ms = 0, 0

function init(args)
        max = tonumber(args[1])
        wrk.method = "GET"
        wrk.headers["Authorization"] = "Bearer " .. args[2]
        delay_ms = tonumber(args[3])
        math.randomseed(os.time())
end

function request()
        local id = string.format("00000000-0000-4000-8%03d-%012d", math.random(1, 2), math.random(1, max))
        return wrk.format(nil, "/v1/deviations/" .. id)
end

function delay()
        return delay_ms
end

function done(summary, latency, requests)
        io.write(string.format("p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
                latency:percentile(99) / 1000, latency:percentile(99.9) / 1000, latency.max / 1000))
end
