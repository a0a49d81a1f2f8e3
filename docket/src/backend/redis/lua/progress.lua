-- progress.lua: applies a progress update of a running task and publishes it.
--
-- KEYS[1]  record     {p}:runs:{key}
-- KEYS[2]  progress   {p}:progress:{key}
-- ARGV[1]  prefix
-- ARGV[2]  key
-- ARGV[3]  op         'total' | 'increment' | 'message'
-- ARGV[4]  value
--
-- Ignored (returns 0) unless the record is RUNNING, so no progress outlives its run.
-- Publishes the full progress as an `Event::Progress` (when anyone listens) and returns 1.

local record, progress = KEYS[1], KEYS[2]
local key, op, value = ARGV[2], ARGV[3], ARGV[4]

if redis.call('HGET', record, 'state') ~= 'RUNNING' then
    return 0
end
-- Tells the run's finish that there is a progress hash to delete.
redis.call('HSETNX', record, 'progress', '1')

if op == 'total' then
    redis.call('HSET', progress, 'total', value)
elseif op == 'increment' then
    redis.call('HINCRBY', progress, 'current', value)
else
    redis.call('HSET', progress, 'message', value)
end
redis.call('HSETNX', progress, 'current', '0')
redis.call('HSET', progress, 'updated_at', rfc3339(now_ms()))

if listened() then
    local fields = redis.call('HMGET', progress, 'current', 'total', 'message')
    local event = '{"type":"progress","current":' .. fields[1]
        .. ',"total":' .. (fields[2] or 'null')
        .. ',"message":' .. (fields[3] and cjson.encode(fields[3]) or 'null') .. '}'
    redis.call('PUBLISH', progress_channel(key), event)
end
return 1
