-- wrk script for bench/gateway_wrk.sh's fixed-rate row: the requests of
-- gateway_wrk.lua (each files a new deviation), paced so that each wrk thread
-- sends RATE requests a second whatever the latency, as long as it has a
-- connection free: each request takes the next slot of the thread's
-- schedule (one every 1000 / RATE ms) and its connection waits for it (wrk's
-- delay(), whole milliseconds). A thread that fell behind sends at once
-- until it has caught up, as an open-loop client would.
-- args: TEMPLATE TOKEN RATE (requests a second of each wrk thread)
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "gateway_wrk.lua")

local ffi = require("ffi")
ffi.cdef [[
struct avk_rate_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clock_id, struct avk_rate_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local now_ts = ffi.new("struct avk_rate_timespec")

local function now_ms()
        ffi.C.clock_gettime(CLOCK_MONOTONIC, now_ts)
        return tonumber(now_ts.tv_sec) * 1000 + tonumber(now_ts.tv_nsec) / 1e6
end

local interval_ms = 0
local next_slot = nil
local file_init = init

function init(args)
        file_init(args)
        interval_ms = 1000 / tonumber(args[3])
end

function delay()
        local now = now_ms()
        next_slot = (next_slot or now) + interval_ms
        local wait = next_slot - now
        return wait > 0 and math.floor(wait + 0.5) or 0
end
