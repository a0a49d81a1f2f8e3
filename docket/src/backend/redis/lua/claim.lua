-- claim.lua: claims messages a worker read (XREADGROUP) or took over (reclaim.lua).
--
-- KEYS[1]  stream          {p}:stream
-- ARGV[1]  prefix
-- ARGV[2]  worker          the consumer now holding the messages
-- ARGV[3]  ttl_ms          execution_ttl, for records that end here without their
--                          producer's (0: delete them)
-- ARGV[4]  max_deliveries  a run delivered more often than this is dead-lettered
-- ARGV[5]  dead_json       the TaskError JSON a dead-lettered record ends FAILED with
-- ARGV[6]  count           how many messages follow, 5 arguments each:
--   id, key, generation, problem_json ('' for a well-formed message; else the TaskError
--   JSON describing what is malformed, and key/generation are '' when unknown), and the
--   message's function ('' when unknown; used only for a malformed message)
--
-- Returns, per message:
--   'run'        the record is now RUNNING for the worker (its `deliveries` counted);
--   'superseded' the record is gone, of another generation, or no longer live: the
--                message is acknowledged and deleted, never run;
--   'dead'       delivered more than max_deliveries times (its workers kept dying),
--                kept in {p}:dead-letters (key → JSON: function, args, when, error):
--                acknowledged and deleted, the record ends FAILED;
--   'dropped'    malformed: acknowledged and deleted; a live record still pointing at
--                it ends FAILED with the problem, and a key with no record at all (a
--                message no docket call wrote) gets a FAILED record saying why.

local stream = KEYS[1]
local by = claimant(ARGV[2], ARGV[3], ARGV[4], ARGV[5])
local ttl_ms, now = by.ttl_ms, by.now
local count = tonumber(ARGV[6])
local out = {}

for i = 0, count - 1 do
    local base = 7 + i * 5
    local id, key, generation, problem = ARGV[base], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]

    if problem ~= '' then
        drop_message(stream, id)
        if key ~= '' then
            local current = redis.call('HMGET', record_key(key), 'state', 'generation', 'stream_id')
            if (current[1] == 'QUEUED' or current[1] == 'RUNNING') and current[3] == id then
                conclude(key, 'FAILED', current[2], call_ttl(key, ttl_ms), problem, now)
            elseif not current[1] and tonumber(ttl_ms) > 0 then
                local record = record_key(key)
                redis.call('HSET', record, 'state', 'FAILED', 'generation', tonumber(generation) or 0,
                    'function', ARGV[base + 4], 'args', '', 'when', rfc3339(now),
                    'completed_at', rfc3339(now), 'error', problem)
                redis.call('PEXPIRE', record, ttl_ms)
                publish_state(key, 'FAILED', tonumber(generation) or 0, nil, problem)
            end
        end
        out[#out + 1] = 'dropped'
    else
        out[#out + 1] = claim_message(stream, id, key, generation, by)
    end
end

return out
