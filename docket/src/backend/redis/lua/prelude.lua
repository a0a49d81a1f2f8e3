-- prelude.lua: helpers shared by every docket script; scripts.rs prepends it to each.
--
-- ARGV[1]  prefix   the docket's key prefix (every script passes it first)
--
-- Per-task keys are derived here from the prefix, with the same suffixes as keys.rs.
-- Scripts name the docket-level keys they touch (stream, queue, ...) in KEYS.

-- Redis 6.2 replicates scripts verbatim unless told otherwise, which forbids writes
-- after TIME; effects replication is the default (and this a no-op) from Redis 7.
if redis.replicate_commands then
    redis.replicate_commands()
end

local PREFIX = ARGV[1]
local GROUP = 'docket-workers'

-- Out of memory under `maxmemory-policy noeviction`, Redis refuses a script (one
-- without flags, which also runs on 6.2) at its first write command that may add
-- memory, and lets every write after its first through. Each script that writes
-- says at its start which way it goes (scripts.rs adds the call; schedule.lua makes
-- it itself; add.lua's first write is an XADD, refused before anything is written):
--
-- a producer's call is refused before anything is written...
local function refuse_when_out_of_memory()
    -- SETRANGE with nothing to write changes nothing (the key is reserved and never
    -- exists), but Redis checks memory first and fails the script with `OOM ...`.
    redis.call('SETRANGE', PREFIX .. ':memory-check', 0, '')
end

-- ...while a worker keeps claiming, acknowledging, deleting and concluding, which is
-- how the memory comes back (an acknowledgement of no message is its first write).
local function continue_when_out_of_memory()
    redis.pcall('XACK', PREFIX .. ':stream', GROUP, '0-0')
end

local function record_key(key) return PREFIX .. ':runs:' .. key end
local function progress_key(key) return PREFIX .. ':progress:' .. key end
local function result_key(key, generation) return PREFIX .. ':results:' .. key .. ':' .. generation end
local function task_workers_key(task) return PREFIX .. ':task-workers:' .. task end
local function worker_tasks_key(worker) return PREFIX .. ':worker-tasks:' .. worker end
local function state_channel(key) return PREFIX .. ':state:' .. key end
local function progress_channel(key) return PREFIX .. ':progress:' .. key end
local function cancel_channel(key) return PREFIX .. ':cancel:' .. key end

-- A whole number as Redis expects it (Lua would print large ones as 1e+15).
local function int(n)
    return string.format('%d', n)
end

-- The server clock in milliseconds since the Unix epoch (the first reading is kept for
-- `listened`).
local script_now
local function now_ms()
    local time = redis.call('TIME')
    local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
    script_now = script_now or now
    return now
end

-- Milliseconds since the epoch as RFC 3339 UTC with milliseconds
-- (days to civil date after Howard Hinnant's proleptic Gregorian algorithm).
local floor = math.floor
local function format_rfc3339(ms)
    local days = floor(ms / 86400000)
    local rest = ms - days * 86400000

    local z = days + 719468
    local era = floor(z / 146097)
    local day_of_era = z - era * 146097
    local year_of_era = floor((day_of_era - floor(day_of_era / 1460)
        + floor(day_of_era / 36524) - floor(day_of_era / 146096)) / 365)
    local day_of_year = day_of_era - (365 * year_of_era + floor(year_of_era / 4)
        - floor(year_of_era / 100))
    local shifted_month = floor((5 * day_of_year + 2) / 153)
    local day = day_of_year - floor((153 * shifted_month + 2) / 5) + 1
    local month = shifted_month < 10 and shifted_month + 3 or shifted_month - 9
    local year = year_of_era + era * 400
    if month <= 2 then
        year = year + 1
    end
    return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', year, month, day,
        floor(rest / 3600000), floor(rest / 60000) % 60, floor(rest / 1000) % 60, rest % 1000)
end

-- Scripts format the same instant (the script's `now`) once per run they touch: the
-- last answer is kept.
local rfc3339_ms, rfc3339_text
local function rfc3339(ms)
    if ms ~= rfc3339_ms then
        rfc3339_ms, rfc3339_text = ms, format_rfc3339(ms)
    end
    return rfc3339_text
end

-- A flat field/value array (HGETALL, stream entries) as a table.
local function to_table(flat)
    local t = {}
    for i = 1, #flat, 2 do
        t[flat[i]] = flat[i + 1]
    end
    return t
end

local function is_live(state)
    return state == 'SCHEDULED' or state == 'QUEUED' or state == 'RUNNING'
end

-- Whether anyone follows the docket's state events now: `{p}:listeners` holds one
-- member per subscription (observe.rs, listen.lua) scored with its lease's end. A
-- script asks at most once; without listeners no per-task state is published.
local LISTENERS = PREFIX .. ':listeners'
local listening
local function listened()
    if listening == nil then
        local now = script_now or now_ms()
        listening = #redis.call('ZRANGEBYSCORE', LISTENERS, now, '+inf', 'LIMIT', 0, 1) > 0
    end
    return listening
end

-- Publishes an `Event::State` for `key` when anyone listens; worker and error_json may
-- be nil or ''.
local function publish_state(key, state, generation, worker, error_json)
    if not listened() then
        return
    end
    local parts = { '{"type":"state","state":"', state, '","generation":', tostring(generation) }
    if worker and worker ~= '' then
        parts[#parts + 1] = ',"worker":' .. cjson.encode(worker)
    end
    if error_json and error_json ~= '' then
        parts[#parts + 1] = ',"error":' .. error_json
    end
    parts[#parts + 1] = '}'
    redis.call('PUBLISH', state_channel(key), table.concat(parts))
end

-- Acknowledges and deletes stream messages, many per call (the group may be gone after
-- a restart).
local function drop_messages(stream, ids)
    for first = 1, #ids, 500 do
        local last = math.min(first + 499, #ids)
        redis.pcall('XACK', stream, GROUP, unpack(ids, first, last))
        redis.call('XDEL', stream, unpack(ids, first, last))
    end
end

-- Acknowledges and deletes one stream message, if there is one.
local function drop_message(stream, id)
    if id and id ~= '' then
        drop_messages(stream, { id })
    end
end

-- The execution_ttl the producer of `key`'s call chose (its record's `ttl`), or
-- `fallback` for a record written before calls carried one.
local function call_ttl(key, fallback)
    return redis.call('HGET', record_key(key), 'ttl') or fallback
end

-- Marks a live record terminal and publishes the state. The record then expires after
-- ttl_ms, or is deleted at once when fire-and-forget (ttl_ms = 0); it keeps the error
-- of this end only (not that of the attempt a retry followed). `no_progress` says the
-- run reported no progress (its record has no `progress` flag), so there is no
-- progress hash to delete; `no_error` that the record holds no error to remove;
-- `result_key`, when given, where the run's result is kept.
local function conclude(key, state, generation, ttl_ms, error_json, now, no_progress, no_error,
                        result_key)
    local record = record_key(key)
    if tonumber(ttl_ms) > 0 then
        local failed = error_json and error_json ~= ''
        local fields = { 'state', state, 'completed_at', rfc3339(now) }
        if failed then
            fields[#fields + 1] = 'error'
            fields[#fields + 1] = error_json
        end
        if result_key then
            fields[#fields + 1] = 'result_key'
            fields[#fields + 1] = result_key
        end
        redis.call('HSET', record, unpack(fields))
        if not failed and not no_error then
            redis.call('HDEL', record, 'error')
        end
        redis.call('PEXPIRE', record, ttl_ms)
    else
        redis.call('DEL', record)
    end
    if not no_progress then
        redis.call('DEL', progress_key(key))
    end
    publish_state(key, state, generation, nil, error_json)
end

-- What claim.lua and take.lua know while they claim: the worker taking the messages,
-- the TTL for records that end here without their producer's, the delivery limit and
-- the error a dead-lettered run ends with (see claim.lua), and the script's `now`.
local function claimant(worker, ttl_ms, max_deliveries, dead_json)
    local now = now_ms()
    return {
        worker = worker, ttl_ms = ttl_ms, max_deliveries = tonumber(max_deliveries),
        dead_json = dead_json, now = now, now_text = int(now),
    }
end

-- Claims the well-formed message `id` of `key`'s run `generation` for `by` (a
-- claimant): 'run', 'superseded' or 'dead', as claim.lua describes them. With
-- `unknown_left`, a message whose key has no record is left alone: 'unchecked'.
local function claim_message(stream, id, key, generation, by, unknown_left)
    local record = record_key(key)
    local current = redis.call('HMGET', record, 'state', 'generation', 'stream_id',
        'deliveries')
    local state = current[1]
    if unknown_left and not state then
        return 'unchecked'
    end
    -- The message id must be the record's: generations restart at 1 on a
    -- fire-and-forget docket, so a stale message can share a live generation.
    if not ((state == 'QUEUED' or state == 'RUNNING')
            and tonumber(current[2]) == tonumber(generation) and current[3] == id) then
        drop_message(stream, id)
        return 'superseded'
    end
    local deliveries = (tonumber(current[4]) or 0) + 1
    if deliveries > by.max_deliveries then
        -- Kept for an operator to retry or purge (`docket dead-letters`).
        local r = redis.call('HMGET', record, 'function', 'args', 'when')
        redis.call('HSET', PREFIX .. ':dead-letters', key, cjson.encode({
            ['function'] = r[1], args = r[2], when = r[3], error = by.dead_json,
            dead_at = rfc3339(by.now),
        }))
        drop_message(stream, id)
        conclude(key, 'FAILED', generation, call_ttl(key, by.ttl_ms), by.dead_json, by.now)
        return 'dead'
    end
    redis.call('HSET', record, 'state', 'RUNNING', 'worker', by.worker,
        'started_at', rfc3339(by.now), 'started_ms', by.now_text, 'deliveries', deliveries)
    publish_state(key, 'RUNNING', generation, by.worker)
    return 'run'
end

-- The fields of a stream message. A field with no value is left out (a record read
-- back without one makes a message a worker refuses by name, never a shifted one).
local function message_fields(key, when, fn, args, attempt, generation, traceparent)
    local fields = {}
    local function put(name, value)
        if value and value ~= '' then
            fields[#fields + 1] = name
            fields[#fields + 1] = value
        end
    end
    put('key', key)
    put('when', when)
    put('function', fn)
    put('args', args)
    put('attempt', attempt)
    put('generation', generation)
    put('traceparent', traceparent)
    return fields
end

-- The record fields a parked call's message is made of at promotion: a parked call
-- has no copy of its message, its record holds it.
local MESSAGE_IN_RECORD = { 'when', 'function', 'args', 'attempt', 'generation', 'traceparent' }

-- The message of a parked call, from the values of MESSAGE_IN_RECORD read from its
-- record (in that order).
local function parked_message(key, values)
    return message_fields(key, values[1], values[2], values[3], values[4], values[5], values[6])
end

-- Queues a call under a key the producer generated for it (a UUID v7: there is no
-- record to look for), due now, as generation 1 of its first attempt: the fields
-- schedule.lua's full path writes. No QUEUED event: events are followed per key, and
-- nobody can follow a key generated for this very call yet.
local function queue_generated(stream, key, fn, args, when, ttl_ms)
    local id = redis.call('XADD', stream, '*', 'key', key, 'when', when, 'function', fn,
        'args', args, 'attempt', '1', 'generation', '1')
    redis.call('HSET', record_key(key), 'state', 'QUEUED', 'generation', '1', 'when', when,
        'function', fn, 'args', args, 'attempt', '1', 'stream_id', id, 'ttl', ttl_ms)
end

-- Queues a message that is due (XADD) or parks its key until `due` (ms): the caller
-- writes the record, which holds a parked call's message (with its `traceparent`).
-- Returns the new state and the stream id ('' when parked).
local function place(stream, queue, key, fields, due, now)
    if due <= now then
        return 'QUEUED', redis.call('XADD', stream, '*', unpack(fields))
    end
    redis.call('ZADD', queue, int(due), key)
    return 'SCHEDULED', ''
end

-- Whether the group has delivered `id` to `worker` and it is not acknowledged yet.
local function is_pending_for(stream, id, worker)
    local pending = redis.pcall('XPENDING', stream, GROUP, id, id, 1, worker)
    return type(pending) == 'table' and pending.err == nil and #pending > 0
end

-- When a call is due, in ms: now, `ms` after now ('after'), or at `ms` ('at').
local function due_ms(kind, ms, now)
    if kind == 'after' then
        return now + ms
    elseif kind == 'at' then
        return ms
    end
    return now
end

-- Walks `count` size-prefixed entries of ARGV starting at ARGV[first] (each entry is its
-- argument count, then that many arguments), yielding each entry's size and the index of
-- its first argument.
local function sized_entries(first, count)
    local at, seen = first, 0
    return function()
        if seen == count then
            return nil
        end
        seen = seen + 1
        local size = tonumber(ARGV[at])
        local base = at + 1
        at = base + size
        return size, base
    end
end

-- Admission control keys (see admission.lua).
local function slot_key(scope) return PREFIX .. ':concurrency:' .. scope end
local function waiting_key(scope) return PREFIX .. ':waiting:' .. scope end
local WAITING_SCOPES = PREFIX .. ':waiting-scopes'
-- Waiters sit in the queue with this score: counted and listed as SCHEDULED, never due.
local PARKED_FOREVER = 9007199254740991

-- Drops the holders of a slot set whose lease ran out; returns how many hold one.
local function live_holders(slots, now)
    redis.call('ZREMRANGEBYSCORE', slots, '-inf', '(' .. int(now))
    return redis.call('ZCARD', slots)
end

-- Queues a parked waiter of `generation`: its message, made from its record, goes to
-- the stream; its record says QUEUED and no longer names what it waited for (`field`).
local function queue_waiter(stream, queue, key, generation, field)
    local record = record_key(key)
    local fields = parked_message(key, redis.call('HMGET', record, unpack(MESSAGE_IN_RECORD)))
    redis.call('ZREM', queue, key)
    local id = redis.call('XADD', stream, '*', unpack(fields))
    redis.call('HSET', record, 'state', 'QUEUED', 'stream_id', id)
    redis.call('HDEL', record, field, 'traceparent')
    publish_state(key, 'QUEUED', generation)
end

-- Calls waiting for a worker that serves their task: a list of keys per task, and the
-- set of tasks that have one.
local function unserved_key(task) return PREFIX .. ':unserved:' .. task end
local UNSERVED_TASKS = PREFIX .. ':unserved'

-- Parks a call of `task` until a worker that serves the task is alive: never due in
-- the queue, its key in the task's list; its record (which holds its message) says
-- since when (`unserved_ms`).
local function park_unserved(queue, key, task, now)
    redis.call('ZADD', queue, PARKED_FOREVER, key)
    redis.call('RPUSH', unserved_key(task), key)
    redis.call('SADD', UNSERVED_TASKS, task)
    redis.call('HSET', record_key(key), 'unserved_ms', int(now))
end

-- Queues every call of `task` waiting for a worker that serves it, oldest first; stale
-- entries (cancelled or replaced calls) are dropped. Returns how many were queued.
local function serve_waiters(stream, queue, task)
    local list = unserved_key(task)
    local queued = 0
    local key = redis.call('LPOP', list)
    while key do
        local record = record_key(key)
        local current = redis.call('HMGET', record, 'state', 'unserved_ms', 'generation')
        if current[1] == 'SCHEDULED' and current[2] then
            queue_waiter(stream, queue, key, current[3], 'unserved_ms')
            queued = queued + 1
        end
        key = redis.call('LPOP', list)
    end
    redis.call('SREM', UNSERVED_TASKS, task)
    return queued
end

-- Wakes waiters of `scope` into its free slots (holders whose lease ran out are dropped
-- first), oldest first: each woken waiter's message goes to the stream with a slot
-- reserved for it, so no newcomer takes its place. Stale entries (cancelled or replaced
-- waiters) are skipped. Returns how many woke.
local function wake_scope(stream, queue, scope, max, lease_ms, now)
    local slots = slot_key(scope)
    local free = tonumber(max) - live_holders(slots, now)
    local list = waiting_key(scope)
    local woke = 0
    while free > 0 do
        local key = redis.call('LPOP', list)
        if not key then
            break
        end
        local record = record_key(key)
        local current = redis.call('HMGET', record, 'state', 'waiting', 'generation')
        if current[1] == 'SCHEDULED' and current[2] == scope then
            redis.call('ZADD', slots, int(now + tonumber(lease_ms)), key)
            queue_waiter(stream, queue, key, current[3], 'waiting')
            free = free - 1
            woke = woke + 1
        end
    end
    if redis.call('LLEN', list) == 0 then
        redis.call('HDEL', WAITING_SCOPES, scope)
    end
    return woke
end

--------------------------------------------------------------------------------------
