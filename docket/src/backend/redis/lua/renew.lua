-- renew.lua: renews a worker's hold on its in-flight messages.
--
-- KEYS[1]  stream     {p}:stream
-- ARGV[1]  prefix
-- ARGV[2]  worker
-- ARGV[3..] ids       the messages the worker is running
--
-- Each message still pending for this worker has its idle time reset (XCLAIM by the
-- same consumer, JUSTID so the delivery count is untouched). Returns the ids it no
-- longer owns (taken over by a sweeper, or already acknowledged).

local stream, worker = KEYS[1], ARGV[2]
local lost = {}

for i = 3, #ARGV do
    local id = ARGV[i]
    if is_pending_for(stream, id, worker) then
        redis.call('XCLAIM', stream, GROUP, worker, 0, id, 'JUSTID')
    else
        lost[#lost + 1] = id
    end
end

return lost
