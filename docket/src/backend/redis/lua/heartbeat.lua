-- heartbeat.lua: records a worker's heartbeat and the tasks it runs.
--
-- KEYS[1]  workers    {p}:workers
-- ARGV[1]  prefix
-- ARGV[2]  worker
-- ARGV[3]  expire_ms  workers not seen for this long are pruned
-- ARGV[4..] tasks     the tasks the worker can run
--
-- {p}:workers and {p}:task-workers:{task} map worker → last heartbeat (ms); stale
-- entries are pruned. {p}:worker-tasks:{worker} lists its tasks and expires with it,
-- as do the task-workers sets no live worker refreshes. A worker counts as alive while
-- its task list exists.

local workers = KEYS[1]
local worker, expire_ms = ARGV[2], ARGV[3]
local now = now_ms()
local stale = '(' .. int(now - tonumber(expire_ms))

redis.call('ZADD', workers, int(now), worker)
redis.call('ZREMRANGEBYSCORE', workers, '-inf', stale)

local tasks = worker_tasks_key(worker)
redis.call('DEL', tasks)
for i = 4, #ARGV do
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
return 1
