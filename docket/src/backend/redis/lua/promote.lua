-- promote.lua: moves due tasks from the schedule to the stream, by the server clock.
--
-- KEYS[1]  stream     {p}:stream
-- KEYS[2]  queue      {p}:queue
-- ARGV[1]  prefix
-- ARGV[2]  limit      at most this many tasks per call
--
-- Returns: moved, and milliseconds until the next scheduled task is due (-1: none;
-- waiters for a concurrency slot are never due).
-- A parked copy whose record no longer expects it (another generation, not SCHEDULED)
-- is dropped instead of queued.

local stream, queue = KEYS[1], KEYS[2]
local limit = tonumber(ARGV[2])
local now = now_ms()
local moved = 0

local due = redis.call('ZRANGEBYSCORE', queue, '-inf', int(now), 'LIMIT', 0, limit)
for _, key in ipairs(due) do
    local parked = parked_key(key)
    local message = redis.call('HGETALL', parked)
    redis.call('ZREM', queue, key)
    redis.call('DEL', parked)
    if #message > 0 then
        local generation = to_table(message)['generation']
        local record = record_key(key)
        local current = redis.call('HMGET', record, 'state', 'generation')
        if current[1] == 'SCHEDULED' and current[2] == generation then
            local id = redis.call('XADD', stream, '*', unpack(message))
            redis.call('HSET', record, 'state', 'QUEUED', 'stream_id', id)
            publish_state(key, 'QUEUED', generation)
            moved = moved + 1
        end
    end
end

local next_due = -1
local first = redis.call('ZRANGEBYSCORE', queue, '-inf', '(' .. int(PARKED_FOREVER), 'WITHSCORES',
    'LIMIT', 0, 1)
if #first > 0 then
    next_due = math.max(0, tonumber(first[2]) - now)
end

return { moved, int(next_due) }
