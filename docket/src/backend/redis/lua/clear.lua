-- clear.lua: removes every scheduled and queued task; their records end CANCELLED.
--
-- KEYS[1]  stream     {p}:stream
-- KEYS[2]  queue      {p}:queue
-- ARGV[1]  prefix
-- ARGV[2]  ttl_ms     execution_ttl (0: delete the records)
--
-- Messages already delivered to a worker (pending) are left to it. Returns how many
-- tasks were removed.

local stream, queue, ttl_ms = KEYS[1], KEYS[2], ARGV[2]
local now = now_ms()
local removed = 0

for _, key in ipairs(redis.call('ZRANGE', queue, 0, -1)) do
    local current = redis.call('HMGET', record_key(key), 'state', 'generation')
    if current[1] == 'SCHEDULED' then
        conclude(key, 'CANCELLED', current[2], call_ttl(key, ttl_ms), nil, now)
    end
    removed = removed + 1
end
redis.call('DEL', queue)

local delivered = {}
local summary = redis.pcall('XPENDING', stream, GROUP)
if type(summary) == 'table' and not summary.err and tonumber(summary[1]) > 0 then
    for _, entry in ipairs(redis.call('XPENDING', stream, GROUP, '-', '+', summary[1])) do
        delivered[entry[1]] = true
    end
end

for _, entry in ipairs(redis.call('XRANGE', stream, '-', '+')) do
    local id = entry[1]
    if not delivered[id] then
        local message = to_table(entry[2])
        redis.call('XDEL', stream, id)
        removed = removed + 1
        if message['key'] then
            local current = redis.call('HMGET', record_key(message['key']), 'state', 'generation', 'stream_id')
            if current[1] == 'QUEUED' and current[3] == id then
                conclude(message['key'], 'CANCELLED', current[2], call_ttl(message['key'], ttl_ms), nil,
                    now)
            end
        end
    end
end

return removed
