-- schedule.lua: schedules a batch of calls (`add` / `replace`), each in order.
--
-- KEYS[1]  stream     {p}:stream
-- KEYS[2]  queue      {p}:queue
-- ARGV[1]  prefix
-- ARGV[2]  ttl_ms     the producer's execution_ttl, kept in each record: the run's end
--                     honours it, whichever worker runs it
-- ARGV[3]  count      how many calls follow, each as its size (3 or 8) and then:
--   key, function, args, and for size 8: due_kind ('now' | 'after' | 'at'), due_ms
--   (delay or instant), attempt, replace ('1' | '0'), traceparent ('' when none).
--   Size 3 is a key the producer generated for this call (a UUID v7, so it has no
--   record), due now, first attempt, no trace context: it is queued without a lookup,
--   as add.lua queues a batch of them alone.
--
-- Returns, per call: disposition, generation, when (RFC 3339).
-- A live key (SCHEDULED, QUEUED, RUNNING) is left alone by `add` (ALREADY_SCHEDULED);
-- `replace` takes its key from the queue or deletes its queued message (a running copy is fenced off by the new
-- generation) and answers SUPERSEDED. The due time is computed from the server clock.

local stream, queue = KEYS[1], KEYS[2]
local ttl_ms, count = ARGV[2], tonumber(ARGV[3])
local out = {}

-- Out of memory, a call may write first (DEL, ZREM) and so is checked up front. (A
-- batch of generated keys alone goes to add.lua, refused at its first XADD.)
refuse_when_out_of_memory()
local now = now_ms()

-- A generated key due now (see queue_generated).
local function queue_fresh(key, fn, args)
    local when = rfc3339(now)
    queue_generated(stream, key, fn, args, when, ttl_ms)
    out[#out + 1] = 'SCHEDULED'
    out[#out + 1] = '1'
    out[#out + 1] = when
end

for size, base in sized_entries(4, count) do
    local key, fn, args = ARGV[base], ARGV[base + 1], ARGV[base + 2]
    if size == 3 then
        queue_fresh(key, fn, args)
    else
        local due_kind, due_value = ARGV[base + 3], tonumber(ARGV[base + 4])
        local attempt, replace, traceparent = ARGV[base + 5], ARGV[base + 6], ARGV[base + 7]

        local record = record_key(key)
        local current = redis.call('HMGET', record, 'state', 'generation', 'when', 'stream_id')
        local state, generation = current[1], tonumber(current[2]) or 0

        if is_live(state) and replace ~= '1' then
            out[#out + 1] = 'ALREADY_SCHEDULED'
            out[#out + 1] = int(generation)
            out[#out + 1] = current[3] or ''
        else
            local disposition = 'SCHEDULED'
            if is_live(state) then
                disposition = 'SUPERSEDED'
                if state == 'SCHEDULED' then
                    redis.call('ZREM', queue, key)
                elseif state == 'QUEUED' then
                    drop_message(stream, current[4])
                end
            end

            local due = due_ms(due_kind, due_value, now)
            local new_generation = int(generation + 1)
            local when = rfc3339(due)
            local fields = message_fields(key, when, fn, args, attempt, new_generation, traceparent)

            -- The record is rewritten whole: no worker, times, error or result of an earlier
            -- run survive, nor the expiry of a terminal record. (Without a record there is
            -- no progress either: progress is only kept while its record is.)
            if state then
                redis.call('DEL', record, progress_key(key))
            end
            local new_state, id = place(stream, queue, key, fields, due, now)
            local record_fields = {
                'state', new_state, 'generation', new_generation, 'when', when,
                'function', fn, 'args', args, 'attempt', attempt, 'ttl', ttl_ms,
            }
            if id ~= '' then
                record_fields[#record_fields + 1] = 'stream_id'
                record_fields[#record_fields + 1] = id
            elseif traceparent ~= '' then
                -- A parked call's message is made from its record at promotion.
                record_fields[#record_fields + 1] = 'traceparent'
                record_fields[#record_fields + 1] = traceparent
            end
            redis.call('HSET', record, unpack(record_fields))
            publish_state(key, new_state, new_generation)

            out[#out + 1] = disposition
            out[#out + 1] = new_generation
            out[#out + 1] = when
        end
    end
end

return out
