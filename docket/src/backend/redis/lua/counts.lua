-- counts.lua: how many tasks are queued, scheduled and running, in one consistent read.
--
-- KEYS[1]  stream     {p}:stream
-- KEYS[2]  queue      {p}:queue
-- ARGV[1]  prefix
--
-- Returns { queued, scheduled, running }: running are the messages delivered and not
-- acknowledged (the group's pending count); queued the rest of the stream.

local stream, queue = KEYS[1], KEYS[2]
local running = 0
local summary = redis.pcall('XPENDING', stream, GROUP)
if type(summary) == 'table' and not summary.err then
    running = tonumber(summary[1])
end
local queued = math.max(0, redis.call('XLEN', stream) - running)
return { queued, redis.call('ZCARD', queue), running }
