-- finish.lua: records finished runs, each fenced by ownership and generation.
--
-- KEYS[1]  stream     {p}:stream
-- ARGV[1]  prefix
-- ARGV[2]  worker     the consumer that ran them
-- ARGV[3]  ttl_ms     execution_ttl (0: fire-and-forget, keep nothing)
-- ARGV[4]  count      how many runs follow, 7 arguments each:
--   id, key, generation, state ('COMPLETED' | 'FAILED' | 'CANCELLED'), error_json (''),
--   has_result ('1' | '0'), result
--
-- Returns, per run:
--   'fenced'     the message is no longer pending for this worker (redelivered
--                elsewhere, or already acknowledged): nothing written;
--   'superseded' the record moved on (another generation, worker or message): the message is
--                acknowledged and deleted, the record left alone;
--   'recorded'   the terminal state is written, the progress deleted, the result stored,
--                the message acknowledged and deleted, the record set to expire. A run
--                cancelled while running keeps its CANCELLED record.

local stream = KEYS[1]
local worker, ttl_ms = ARGV[2], ARGV[3]
local keep = tonumber(ttl_ms) > 0
local count = tonumber(ARGV[4])
local now = now_ms()
local out = {}

for i = 0, count - 1 do
    local base = 5 + i * 7
    local id, key, generation = ARGV[base], ARGV[base + 1], ARGV[base + 2]
    local state, error_json = ARGV[base + 3], ARGV[base + 4]
    local has_result, result = ARGV[base + 5], ARGV[base + 6]

    if not is_pending_for(stream, id, worker) then
        out[#out + 1] = 'fenced'
    else
        local record = record_key(key)
        local current = redis.call('HMGET', record, 'state', 'generation', 'worker', 'stream_id')
        drop_message(stream, id)
        -- The stream id fences too: on a fire-and-forget docket generations restart at 1
        -- once a record is deleted, so only the message id tells two runs apart.
        if tonumber(current[2]) ~= tonumber(generation) or current[3] ~= worker
            or current[4] ~= id then
            out[#out + 1] = 'superseded'
        elseif current[1] == 'CANCELLED' then
            redis.call('DEL', progress_key(key))
            out[#out + 1] = 'recorded'
        else
            if keep and has_result == '1' then
                local stored = result_key(key, generation)
                redis.call('SET', stored, result, 'PX', ttl_ms)
                redis.call('HSET', record, 'result_key', stored)
            end
            conclude(key, state, generation, ttl_ms, error_json, now)
            out[#out + 1] = 'recorded'
        end
    end
end

return out
