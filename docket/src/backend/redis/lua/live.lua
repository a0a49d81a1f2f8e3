-- live.lua: every live task with its record, in one consistent read.
--
-- KEYS[1]  stream     {p}:stream
-- KEYS[2]  queue      {p}:queue
-- ARGV[1]  prefix
--
-- Returns { scheduled, queued, running }, each a list of { key, record fields }:
-- scheduled from the queue, queued from stream entries not delivered yet, running from
-- delivered entries not acknowledged. A message whose record has moved on is skipped.

local stream, queue = KEYS[1], KEYS[2]
local scheduled, queued, running = {}, {}, {}

for _, key in ipairs(redis.call('ZRANGE', queue, 0, -1)) do
    local record = redis.call('HGETALL', record_key(key))
    if #record > 0 then
        scheduled[#scheduled + 1] = { key, record }
    end
end

local delivered = {}
local summary = redis.pcall('XPENDING', stream, GROUP)
if type(summary) == 'table' and not summary.err and tonumber(summary[1]) > 0 then
    for _, entry in ipairs(redis.call('XPENDING', stream, GROUP, '-', '+', summary[1])) do
        delivered[entry[1]] = true
    end
end

for _, entry in ipairs(redis.call('XRANGE', stream, '-', '+')) do
    local message = to_table(entry[2])
    local key = message['key']
    if key then
        local record = redis.call('HGETALL', record_key(key))
        if #record > 0 and to_table(record)['generation'] == message['generation'] then
            if delivered[entry[1]] then
                running[#running + 1] = { key, record }
            else
                queued[#queued + 1] = { key, record }
            end
        end
    end
end

return { scheduled, queued, running }
