-- add.lua: queues a batch of calls under keys the producer generated for them (the
-- common `add` and `add_many`): due now, first attempt, no trace context. schedule.lua
-- does everything else, and writes the same record and message fields.
--
-- KEYS[1]  stream     {p}:stream
-- ARGV[1]  prefix
-- ARGV[2]  count      how many calls follow, 3 arguments each: key, function, args
-- ARGV[3]  ttl_ms     the producer's execution_ttl, kept in each record: the run's end
--                     honours it, whichever worker runs it
--
-- Returns the calls' due time (RFC 3339): each is SCHEDULED (queued) as generation 1.
--
-- Each is written by queue_generated (see the prelude). Out of memory, the batch is
-- refused at its first XADD, before it has written anything: Redis checks a script's
-- commands that add memory until its first write.

local stream = KEYS[1]
local count, ttl_ms = tonumber(ARGV[2]), ARGV[3]
local when = rfc3339(now_ms())

for base = 4, 3 + count * 3, 3 do
    queue_generated(stream, ARGV[base], ARGV[base + 1], ARGV[base + 2], when, ttl_ms)
end

return when
