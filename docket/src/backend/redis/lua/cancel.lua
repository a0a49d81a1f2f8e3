-- cancel.lua: cancels one key.
--
-- KEYS[1]  stream     {p}:stream
-- KEYS[2]  queue      {p}:queue
-- ARGV[1]  prefix
-- ARGV[2]  key
-- ARGV[3]  ttl_ms     execution_ttl for a record that does not carry its producer's
--                     (0: delete the record)
--
-- SCHEDULED: its key leaves the queue. QUEUED: the message is deleted (and
-- acknowledged, in case a worker just read it). RUNNING: its worker is signalled on
-- {p}:cancel:{key} with the generation as the message. Each ends CANCELLED. Returns 1, or 0 when the key was not live.

local stream, queue = KEYS[1], KEYS[2]
local key, ttl_ms = ARGV[2], ARGV[3]

local current = redis.call('HMGET', record_key(key), 'state', 'generation', 'stream_id')
local state = current[1]
if state == 'SCHEDULED' then
    redis.call('ZREM', queue, key)
elseif state == 'QUEUED' then
    drop_message(stream, current[3])
elseif state == 'RUNNING' then
    -- The payload is the cancelled generation.
    redis.call('PUBLISH', cancel_channel(key), current[2])
else
    return 0
end

conclude(key, 'CANCELLED', current[2], call_ttl(key, ttl_ms), nil, now_ms())
return 1
