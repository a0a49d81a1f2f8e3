-- take.lua: reads up to `count` new messages for a worker and claims them, in one
-- step: XREADGROUP (without waiting), then what claim.lua does with each message.
--
-- KEYS[1]  stream          {p}:stream
-- ARGV[1]  prefix
-- ARGV[2]  worker          the consumer reading and holding the messages
-- ARGV[3]  ttl_ms          execution_ttl, for records that end here without their
--                          producer's (0: delete them)
-- ARGV[4]  max_deliveries  a run delivered more often than this is dead-lettered
-- ARGV[5]  dead_json       the TaskError JSON a dead-lettered record ends FAILED with
-- ARGV[6]  count           the most messages to read
--
-- Returns three items per message read: its id, what became of it, and its fields as
-- XREADGROUP gives them. What became of it is claim.lua's 'run', 'superseded' or 'dead',
-- or 'unchecked': a message without a key or a generation, or whose key has no record
-- (a message no docket call wrote, or one whose run is gone), which stays pending for
-- the worker to judge with claim.lua: it knows what is malformed, and says so.
-- A missing group is the read's own NOGROUP error.

local stream = KEYS[1]
local read = redis.pcall('XREADGROUP', 'GROUP', GROUP, ARGV[2], 'COUNT', ARGV[6],
    'STREAMS', stream, '>')
if type(read) == 'table' and read.err then
    return redis.error_reply(read.err)
end
local out = {}
if not read then
    return out
end

local by = claimant(ARGV[2], ARGV[3], ARGV[4], ARGV[5])
for _, entry in ipairs(read[1][2]) do
    local id, fields = entry[1], entry[2]
    local key, generation
    for i = 1, #fields, 2 do
        local name = fields[i]
        if name == 'key' then
            key = fields[i + 1]
        elseif name == 'generation' then
            generation = fields[i + 1]
        end
    end
    local verdict = 'unchecked'
    if key and generation then
        verdict = claim_message(stream, id, key, generation, by, true)
    end
    out[#out + 1] = id
    out[#out + 1] = verdict
    out[#out + 1] = fields
end
return out
