-- heartbeat.lua: records a worker's heartbeat and the tasks it runs, and queues the
-- calls of those tasks that wait for a worker serving them.
--
-- KEYS[1]  workers    {p}:workers
-- KEYS[2]  stream     {p}:stream
-- KEYS[3]  queue      {p}:queue
-- ARGV[1]  prefix
-- ARGV[2]  worker
-- ARGV[3]  expire_ms  workers not seen for this long are pruned
-- ARGV[4]  succeeded  runs that completed since the last heartbeat
-- ARGV[5]  failed     runs that failed for good since then
-- ARGV[6]  retried    runs that failed and will be tried again since then
-- ARGV[7]  interval_ms  the length of one interval of the activity history
-- ARGV[8]  kept_ms    how long an interval of the history is kept
-- ARGV[9..] tasks     the tasks the worker can run
--
-- The activity history is a hash per interval, {p}:activity:{interval number}, adding
-- up what every worker reported in it (fields s, f, r); each expires on its own.
--
-- {p}:workers and {p}:task-workers:{task} map worker → last heartbeat (ms); stale
-- entries are pruned. {p}:worker-tasks:{worker} lists its tasks and expires with it,
-- as do the task-workers sets no live worker refreshes. A worker counts as alive while
-- its task list exists.
--
-- Returns how many waiting calls were queued.

local workers, stream, queue = KEYS[1], KEYS[2], KEYS[3]
local worker, expire_ms = ARGV[2], ARGV[3]
local now = now_ms()
local stale = '(' .. int(now - tonumber(expire_ms))
local FIRST_TASK = 9

local counts = { s = tonumber(ARGV[4]), f = tonumber(ARGV[5]), r = tonumber(ARGV[6]) }
if counts.s + counts.f + counts.r > 0 then
    local interval = PREFIX .. ':activity:' .. int(math.floor(now / tonumber(ARGV[7])))
    for field, count in pairs(counts) do
        if count > 0 then
            redis.call('HINCRBY', interval, field, count)
        end
    end
    redis.call('PEXPIRE', interval, ARGV[8])
end

redis.call('ZADD', workers, int(now), worker)
redis.call('ZREMRANGEBYSCORE', workers, '-inf', stale)

local tasks = worker_tasks_key(worker)
redis.call('DEL', tasks)
for i = FIRST_TASK, #ARGV do
    redis.call('SADD', tasks, ARGV[i])
    local task_workers = task_workers_key(ARGV[i])
    redis.call('ZADD', task_workers, int(now), worker)
    redis.call('ZREMRANGEBYSCORE', task_workers, '-inf', stale)
    -- Extend, never shorten: other workers of the task may expire later than this one.
    if redis.call('PTTL', task_workers) < tonumber(expire_ms) then
        redis.call('PEXPIRE', task_workers, expire_ms)
    end
end
redis.call('PEXPIRE', tasks, expire_ms)

local queued = 0
if redis.call('EXISTS', UNSERVED_TASKS) == 1 then
    for i = FIRST_TASK, #ARGV do
        if redis.call('SISMEMBER', UNSERVED_TASKS, ARGV[i]) == 1 then
            queued = queued + serve_waiters(stream, queue, ARGV[i])
        end
    end
end
return queued
