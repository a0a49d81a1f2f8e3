-- unserved.lua: the calls waiting for a worker that serves their task (finish.lua's
-- 'unserved'): listed, or given up on.
--
-- KEYS[1]  queue      {p}:queue
-- ARGV[1]  prefix
-- ARGV[2]  action     'list' | 'abandon'
--
-- list     Returns, per task with waiting calls: task, how many wait, and when the one
--          waiting longest was handed back (ms). Stale entries are dropped.
-- abandon  ARGV[3] task, ARGV[4] since_ms, ARGV[5] error_json, ARGV[6] ttl_ms.
--          Unless a live worker serves the task, each call of it handed back no later
--          than since_ms is dead-lettered ({p}:dead-letters) and its record ends FAILED
--          with error_json. Returns how many.

local queue, action = KEYS[1], ARGV[2]
local now = now_ms()

-- The keys of `task` still waiting, with their `unserved_ms`; the list keeps only them.
local function waiting(task)
    local list = unserved_key(task)
    local keys = redis.call('LRANGE', list, 0, -1)
    local live = {}
    for _, key in ipairs(keys) do
        local current = redis.call('HMGET', record_key(key), 'state', 'unserved_ms')
        if current[1] == 'SCHEDULED' and current[2] then
            live[#live + 1] = { key, tonumber(current[2]) }
        end
    end
    if #live < #keys then
        redis.call('DEL', list)
        for _, entry in ipairs(live) do
            redis.call('RPUSH', list, entry[1])
        end
    end
    if #live == 0 then
        redis.call('SREM', UNSERVED_TASKS, task)
    end
    return live
end

if action == 'list' then
    local out = {}
    for _, task in ipairs(redis.call('SMEMBERS', UNSERVED_TASKS)) do
        local live = waiting(task)
        if #live > 0 then
            local oldest = live[1][2]
            for _, entry in ipairs(live) do
                oldest = math.min(oldest, entry[2])
            end
            out[#out + 1] = task
            out[#out + 1] = #live
            out[#out + 1] = int(oldest)
        end
    end
    return out
elseif action == 'abandon' then
    local task, since = ARGV[3], tonumber(ARGV[4])
    local error_json, ttl_ms = ARGV[5], ARGV[6]
    local servers = task_workers_key(task)
    -- A worker serving the task is alive while its task list lives (heartbeat.lua).
    for _, worker in ipairs(redis.call('ZRANGE', servers, 0, -1)) do
        if redis.call('EXISTS', worker_tasks_key(worker)) == 1 then
            return 0
        end
    end
    local abandoned = 0
    local list = unserved_key(task)
    for _, entry in ipairs(waiting(task)) do
        local key, handed_back = entry[1], entry[2]
        if handed_back <= since then
            local record = record_key(key)
            local r = redis.call('HMGET', record, 'function', 'args', 'when', 'generation')
            redis.call('HSET', PREFIX .. ':dead-letters', key, cjson.encode({
                ['function'] = r[1], args = r[2], when = r[3], error = error_json,
                dead_at = rfc3339(now),
            }))
            redis.call('ZREM', queue, key)
            redis.call('LREM', list, 1, key)
            redis.call('HDEL', record, 'unserved_ms')
            conclude(key, 'FAILED', r[4], call_ttl(key, ttl_ms), error_json, now)
            abandoned = abandoned + 1
        end
    end
    if redis.call('LLEN', list) == 0 then
        redis.call('SREM', UNSERVED_TASKS, task)
    end
    return abandoned
end
return redis.error_reply('unknown unserved action ' .. tostring(action))
