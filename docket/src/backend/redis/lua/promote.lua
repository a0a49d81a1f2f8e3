-- promote.lua: moves due tasks from the schedule to the stream, by the server clock.
--
-- KEYS[1]  stream     {p}:stream
-- KEYS[2]  queue      {p}:queue
-- ARGV[1]  prefix
-- ARGV[2]  limit      at most this many tasks per call
--
-- Returns: moved, and milliseconds until the next scheduled task is due (-1: none;
-- waiters for a concurrency slot are never due).
-- A parked call's message is made from its record (see parked_message). A key whose
-- record is no longer SCHEDULED (cancelled, replaced by a queued copy, expired) only
-- leaves the queue.

local stream, queue = KEYS[1], KEYS[2]
local limit = tonumber(ARGV[2])
local now = now_ms()
local moved = 0

local due = redis.call('ZRANGEBYSCORE', queue, '-inf', int(now), 'LIMIT', 0, limit)
if #due > 0 then
    redis.call('ZREM', queue, unpack(due))
end
local wanted = { 'state', unpack(MESSAGE_IN_RECORD) }
for _, key in ipairs(due) do
    local record = record_key(key)
    local current = redis.call('HMGET', record, unpack(wanted))
    if current[1] == 'SCHEDULED' then
        local values = { unpack(current, 2) }
        local id = redis.call('XADD', stream, '*', unpack(parked_message(key, values)))
        redis.call('HSET', record, 'state', 'QUEUED', 'stream_id', id)
        if values[6] then
            redis.call('HDEL', record, 'traceparent')
        end
        publish_state(key, 'QUEUED', values[5])
        moved = moved + 1
    end
end

local next_due = -1
local first = redis.call('ZRANGEBYSCORE', queue, '-inf', '(' .. int(PARKED_FOREVER), 'WITHSCORES',
    'LIMIT', 0, 1)
if #first > 0 then
    next_due = math.max(0, tonumber(first[2]) - now)
end

return { moved, int(next_due) }
