-- strike.lua: appends a strike instruction, compacting the stream when it grows.
--
-- KEYS[1]  strikes        {p}:strikes
-- ARGV[1]  prefix
-- ARGV[2]  compact_above  entries beyond which the stream is compacted
-- ARGV[3..] the instruction's field/value pairs (action, task, parameter, operator, value)
--
-- Compaction folds the stream into the strikes in effect (a strike adds its identity —
-- task, parameter, operator, value — a restore removes it, a reset clears all) and, when
-- that halves it, appends a 'reset' entry followed by those strikes, in the order they
-- were made (a strike restored and made again counts from the last time), and trims
-- everything before the reset. A follower reading from anywhere ends with the same
-- strikes in the same order.
--
-- Returns the id of the appended instruction.

local stream = KEYS[1]
local id = redis.call('XADD', stream, '*', unpack(ARGV, 3))
local length = redis.call('XLEN', stream)
if length <= tonumber(ARGV[2]) then
    return id
end

-- `order` lists identities as they were struck; `made` is where each was last struck.
local order, made, live = {}, {}, {}
for _, entry in ipairs(redis.call('XRANGE', stream, '-', '+')) do
    local f = to_table(entry[2])
    if f.action == 'reset' then
        order, made, live = {}, {}, {}
    else
        local identity = table.concat({ f.task or '', f.parameter or '', f.operator or '', f.value or '' }, '\0')
        if f.action == 'strike' then
            if not live[identity] then
                order[#order + 1] = identity
                made[identity] = #order
            end
            live[identity] = entry[2]
        elseif f.action == 'restore' then
            live[identity] = nil
        end
    end
end

local kept = {}
for at, identity in ipairs(order) do
    if live[identity] and made[identity] == at then
        kept[#kept + 1] = live[identity]
    end
end
if #kept + 1 < length / 2 then
    local reset = redis.call('XADD', stream, '*', 'action', 'reset')
    for _, fields in ipairs(kept) do
        redis.call('XADD', stream, '*', unpack(fields))
    end
    redis.call('XTRIM', stream, 'MINID', reset)
end
return id
