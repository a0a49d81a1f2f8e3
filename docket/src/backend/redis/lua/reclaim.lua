-- reclaim.lua: takes over messages whose worker stopped renewing them.
--
-- KEYS[1]  stream     {p}:stream
-- KEYS[2]  lock       {p}:lock:redelivery
-- ARGV[1]  prefix
-- ARGV[2]  worker     the sweeper, new owner of what it takes
-- ARGV[3]  idle_ms    messages idle longer than this are abandoned
-- ARGV[4]  limit      take at most this many
--
-- One sweeper at a time: the lock is a lease of half of idle_ms held by the sweeping
-- worker, renewed each time it sweeps (every quarter of its idle_ms), so that a sweeper
-- that died stops blocking the others soon; a worker that stops releases it. XAUTOCLAIM runs with JUSTID, following its cursor
-- within the limit, and each message is then read back with XRANGE: that way a
-- message deleted from the stream is seen the same on Redis 6.2 (where XAUTOCLAIM
-- answers nil for it and leaves it pending) and 7.x (where it drops it from the
-- pending list): it is acknowledged and skipped.
--
-- Returns { id, fields } for each message taken; claim.lua then checks and claims them.

local stream, lock = KEYS[1], KEYS[2]
local worker, idle_ms, limit = ARGV[2], ARGV[3], tonumber(ARGV[4])

local holder = redis.call('GET', lock)
if holder and holder ~= worker then
    return {}
end
redis.call('SET', lock, worker, 'PX', math.max(50, math.floor(tonumber(idle_ms) / 2)))

local taken = {}
local cursor = '0-0'
local rounds = 0
repeat
    local reply = redis.pcall('XAUTOCLAIM', stream, GROUP, worker, idle_ms, cursor,
        'COUNT', limit - #taken, 'JUSTID')
    if type(reply) ~= 'table' or reply.err then
        -- No group (yet): nothing can be pending.
        return taken
    end
    cursor = reply[1]
    for _, id in ipairs(reply[2]) do
        local entry = redis.call('XRANGE', stream, id, id)
        if #entry == 0 then
            redis.call('XACK', stream, GROUP, id)
        else
            taken[#taken + 1] = { id, entry[1][2] }
        end
    end
    rounds = rounds + 1
until cursor == '0-0' or #taken >= limit or rounds >= 16

return taken
