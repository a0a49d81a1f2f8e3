-- finish.lua: records finished runs, each fenced by ownership and generation.
--
-- KEYS[1]  stream     {p}:stream
-- KEYS[2]  queue      {p}:queue
-- ARGV[1]  prefix
-- ARGV[2]  worker     the consumer that ran them
-- ARGV[3]  ttl_ms     this worker's execution_ttl, for a record that does not carry its
--                     producer's (0: fire-and-forget, keep nothing)
-- ARGV[4]  lease_ms   how long a concurrency slot reserved for a woken waiter lasts
-- ARGV[5]  count      how many runs follow, each as its size (7 or 15) and then:
--   id, key, generation, state ('COMPLETED' | 'FAILED' | 'CANCELLED' | 'DEFERRED'),
--   error_json (''), has_result, result: '1' and the result to store, '2' and the
--   key of a result store that already holds it (only the record's result_key is set),
--   or '0' and '',
--   and, for a run of size 15 (one that goes on or held a slot):
--   next_kind ('' | 'after' | 'at' | 'start' | 'wait' | 'unserved'), next_ms,
--   next_attempt,
--   next_args ('' keeps the current arguments), traceparent,
--   release ('1': the run held a concurrency slot), slot_scope, slot_max
--
-- A run that held a slot releases it and wakes the oldest waiter of its scope.
-- next_kind 'wait' parks the call as a waiter of slot_scope (FIFO) unless a slot is
-- free by now, in which case it is queued again at once. 'unserved' parks it until a
-- worker that serves its task is alive (the worker that claimed it does not): such a
-- worker's heartbeat queues it (heartbeat.lua).
--
-- With a next_kind, the run is not concluded: in the same step the key is rescheduled
-- (a retry, a perpetual task's next run) as a new generation, due after next_ms, at
-- next_ms, or next_ms after the run started ('start', never in the past). Its record
-- keeps the last error while a retry waits. A run cancelled meanwhile is not rescheduled.
--
-- Returns, per run:
--   'fenced'     the record no longer names this run and the message is not pending
--                for this worker (redelivered elsewhere, or already acknowledged):
--                nothing written;
--   'superseded' the record moved on (another generation, worker or message): the message is
--                acknowledged and deleted, the record left alone;
--   'recorded'   the terminal state is written, the progress deleted, the result stored,
--                the message acknowledged and deleted, the record set to expire. A run
--                cancelled while running keeps its CANCELLED record.

local stream, queue = KEYS[1], KEYS[2]
local worker, default_ttl_ms = ARGV[2], ARGV[3]
local lease_ms = ARGV[4]
local count = tonumber(ARGV[5])
local now = now_ms()
local out = {}

-- Moves a finished run's key to its next generation (see the header).
local function reschedule(record, key, generation, kind, ms, attempt, args, traceparent,
                          state, error_json, now, slot_scope, slot_max)
    local current = to_table(redis.call('HGETALL', record))
    local waiting = false
    if kind == 'wait' then
        waiting = live_holders(slot_key(slot_scope), now) >= tonumber(slot_max)
    end
    local unserved = kind == 'unserved'
    local due = due_ms(kind, ms, now)
    if kind == 'start' then
        due = math.max(now, (tonumber(current['started_ms']) or now) + ms)
    end
    if args == '' then
        args = current['args']
    end
    local new_generation = int(tonumber(generation) + 1)
    local when = rfc3339(due)
    if waiting or unserved then
        when = current['when']
    end
    local fields = message_fields(key, when, current['function'], args, attempt,
        new_generation, traceparent)
    local new_state, id = 'SCHEDULED', ''
    if unserved then
        park_unserved(queue, key, current['function'], now)
    elseif waiting then
        redis.call('ZADD', queue, PARKED_FOREVER, key)
        redis.call('RPUSH', waiting_key(slot_scope), key)
        redis.call('HSET', WAITING_SCOPES, slot_scope, slot_max)
    else
        new_state, id = place(stream, queue, key, fields, due, now)
    end
    -- What the record says of the next generation, in one write, once what it said of
    -- this run is gone.
    local set = { 'state', new_state, 'generation', new_generation, 'when', when,
        'args', args, 'attempt', attempt }
    local gone = { 'worker', 'started_at', 'started_ms', 'completed_at', 'deliveries',
        'result_key', 'progress' }
    local function keep(field, value)
        if value then
            set[#set + 1] = field
            set[#set + 1] = value
        elseif current[field] then
            gone[#gone + 1] = field
        end
    end
    keep('stream_id', id ~= '' and id or nil)
    keep('waiting', waiting and slot_scope or nil)
    -- A parked call's message is made from its record: it keeps the trace context the
    -- next message carries, and no other.
    keep('traceparent', id == '' and traceparent and traceparent ~= '' and traceparent or nil)
    keep('error', state == 'FAILED' and error_json ~= '' and error_json or nil)
    if not unserved and current['unserved_ms'] then
        gone[#gone + 1] = 'unserved_ms'
    end
    -- A live record never has an expiry (only conclude sets one, and schedule.lua
    -- writes a terminal record's key afresh), so there is none to remove here.
    redis.call('HDEL', record, unpack(gone))
    redis.call('HSET', record, unpack(set))
    if current['progress'] then
        redis.call('DEL', progress_key(key))
    end
    publish_state(key, new_state, new_generation)
end

-- Messages to acknowledge and delete, all at once after the loop.
local done = {}

for size, base in sized_entries(6, count) do
    local id, key, generation = ARGV[base], ARGV[base + 1], ARGV[base + 2]
    local state, error_json = ARGV[base + 3], ARGV[base + 4]
    local has_result, result = ARGV[base + 5], ARGV[base + 6]
    local next_kind, next_ms, next_attempt, next_args, traceparent = '', nil, nil, nil, nil
    local release, slot_scope, slot_max = '0', nil, nil
    if size > 7 then
        next_kind, next_ms = ARGV[base + 7], tonumber(ARGV[base + 8])
        next_attempt, next_args, traceparent = ARGV[base + 9], ARGV[base + 10], ARGV[base + 11]
        release, slot_scope, slot_max = ARGV[base + 12], ARGV[base + 13], ARGV[base + 14]
    end

    local record = record_key(key)
    local current = redis.call('HMGET', record, 'state', 'generation', 'worker', 'stream_id',
        'progress', 'error', 'ttl')
    -- The TTL the call's producer chose; this worker's for a record without one.
    local ttl_ms = current[7] or default_ttl_ms
    -- The run is still this worker's when its record says so: claim.lua wrote the
    -- worker, generation and message id when it took the message, and a run taken over
    -- by another worker (reclaim), rescheduled, concluded or replaced changes one of
    -- them or the state. The stream id fences too: on a fire-and-forget docket
    -- generations restart at 1 once a record is deleted, so only the message id tells
    -- two runs apart. Anything else asks the pending list.
    local ours = (current[1] == 'RUNNING' or current[1] == 'CANCELLED')
        and tonumber(current[2]) == tonumber(generation) and current[3] == worker
        and current[4] == id
    if not ours and not is_pending_for(stream, id, worker) then
        out[#out + 1] = 'fenced'
    else
        done[#done + 1] = id
        if release == '1' then
            redis.call('ZREM', slot_key(slot_scope), key)
            wake_scope(stream, queue, slot_scope, slot_max, lease_ms, now)
        end
        if not ours then
            out[#out + 1] = 'superseded'
        elseif current[1] == 'CANCELLED' then
            if current[5] then
                redis.call('DEL', progress_key(key))
            end
            out[#out + 1] = 'recorded'
        else
            local stored
            if has_result ~= '0' and tonumber(ttl_ms) > 0 then
                -- '2': a result store holds it already, under the key `result` names.
                stored = result
                if has_result == '1' then
                    stored = result_key(key, generation)
                    redis.call('SET', stored, result, 'PX', ttl_ms)
                end
            end
            if next_kind == '' then
                conclude(key, state, generation, ttl_ms, error_json, now, not current[5],
                    not current[6], stored)
            else
                -- The next generation starts without a result (reschedule clears it).
                reschedule(record, key, generation, next_kind, next_ms, next_attempt,
                    next_args, traceparent, state, error_json, now, slot_scope, slot_max)
            end
            out[#out + 1] = 'recorded'
        end
    end
end

drop_messages(stream, done)
return out
