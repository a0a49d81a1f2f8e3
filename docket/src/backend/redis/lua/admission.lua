-- admission.lua: the admission rules the store decides before a worker runs a call.
--
-- KEYS[1]  the rule's key: {p}:concurrency:{scope}, {p}:cooldown:{scope} or
--          {p}:rate:{scope}
-- ARGV[1]  prefix
-- ARGV[2]  rule: 'concurrency' | 'renew' | 'cooldown' | 'rate_limit'
--
-- concurrency  ARGV[3] key, ARGV[4] max, ARGV[5] lease_ms. Takes (or renews) a slot for
--              key unless `max` other keys hold unexpired ones. Returns 1 (holds) or 0.
-- renew        ARGV[3] key, ARGV[4] lease_ms. Extends a slot key holds (by the server
--              clock); returns 1, or 0 when it no longer holds one.
-- cooldown     ARGV[3] window_ms. Returns 1 and starts the window when none is running,
--              else 0 (the call is dropped).
-- rate_limit   ARGV[3] member, ARGV[4] limit, ARGV[5] per_ms. Sliding window: returns 0
--              and records the run when fewer than `limit` ran in the last per_ms, else
--              the milliseconds until the oldest of them leaves the window.

local target, rule = KEYS[1], ARGV[2]
local now = now_ms()

if rule == 'concurrency' then
    local key, max, lease_ms = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
    if live_holders(target, now) < max or redis.call('ZSCORE', target, key) then
        redis.call('ZADD', target, int(now + lease_ms), key)
        return 1
    end
    return 0
elseif rule == 'renew' then
    if redis.call('ZSCORE', target, ARGV[3]) then
        redis.call('ZADD', target, int(now + tonumber(ARGV[4])), ARGV[3])
        return 1
    end
    return 0
elseif rule == 'cooldown' then
    if redis.call('SET', target, int(now), 'NX', 'PX', ARGV[3]) then
        return 1
    end
    return 0
elseif rule == 'rate_limit' then
    local member, limit, per_ms = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
    redis.call('ZREMRANGEBYSCORE', target, '-inf', '(' .. int(now - per_ms + 1))
    if redis.call('ZCARD', target) < limit then
        redis.call('ZADD', target, int(now), member)
        redis.call('PEXPIRE', target, per_ms)
        return 0
    end
    local oldest = redis.call('ZRANGE', target, 0, 0, 'WITHSCORES')
    return math.max(1, tonumber(oldest[2]) + per_ms - now)
end
return redis.error_reply('unknown admission rule ' .. tostring(rule))
