-- listen.lua: starts, renews or ends one subscription to the docket's events.
--
-- KEYS[1]  listeners  {p}:listeners
-- ARGV[1]  prefix
-- ARGV[2]  id         the subscription
-- ARGV[3]  lease_ms   how long it counts without a renewal (0: it ended)
--
-- Scripts publish per-task state and progress events only while `{p}:listeners` holds
-- a member whose lease has not run out (prelude.lua, `listened`). Leases that ran out
-- (a subscriber that died) are dropped here.
--
-- Returns 1 when the subscription was registered with a lease not yet run out, 0
-- otherwise: a renewal that gets 0 knows events may have gone unpublished meanwhile.

local listeners = KEYS[1]
local id, lease_ms = ARGV[2], tonumber(ARGV[3])
local now = now_ms()

local held = redis.call('ZSCORE', listeners, id)
local registered = held and tonumber(held) >= now
redis.call('ZREMRANGEBYSCORE', listeners, '-inf', '(' .. int(now))
if lease_ms > 0 then
    redis.call('ZADD', listeners, int(now + lease_ms), id)
else
    redis.call('ZREM', listeners, id)
end
return registered and 1 or 0
