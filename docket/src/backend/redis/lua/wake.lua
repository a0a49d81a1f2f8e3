-- wake.lua: wakes waiters whose slots were freed by holders that stopped renewing
-- them (their worker died): run periodically by workers.
--
-- KEYS[1]  stream     {p}:stream
-- KEYS[2]  queue      {p}:queue
-- ARGV[1]  prefix
-- ARGV[2]  lease_ms   the slot reserved for each woken waiter
--
-- Returns how many waiters woke.

local stream, queue = KEYS[1], KEYS[2]
local now = now_ms()
local woke = 0
local scopes = redis.call('HGETALL', WAITING_SCOPES)
for i = 1, #scopes, 2 do
    woke = woke + wake_scope(stream, queue, scopes[i], scopes[i + 1], ARGV[2], now)
end
return woke
