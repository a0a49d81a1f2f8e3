-- page.lua: one page of live tasks with their records, read at a cost that does not
-- grow with the length of the list.
--
-- KEYS[1]  stream     {p}:stream
-- KEYS[2]  queue      {p}:queue
-- ARGV[1]  prefix
-- ARGV[2]  listing    'scheduled' | 'queued' | 'running'
-- ARGV[3]  after      the cursor the previous page returned, or '' for the first page
-- ARGV[4]  limit      at most this many tasks
--
-- Returns { next, { key, record fields }... }: next is the cursor of the following
-- page, or '' on the last one.
--   scheduled: by due time; the cursor is a rank in the queue.
--   queued:    stream entries not delivered yet (after the group's last delivered id);
--              the cursor is an entry id.
--   running:   entries delivered and not acknowledged; the cursor is an entry id.
-- A message whose record has moved on (or gone) is skipped, so a page may hold fewer
-- than `limit` tasks and still not be the last.

local stream, queue = KEYS[1], KEYS[2]
local listing, after, limit = ARGV[2], ARGV[3], tonumber(ARGV[4])
local listed = {}

local function list_current(key, generation)
    local record = redis.call('HGETALL', record_key(key))
    if #record > 0 and (generation == nil or to_table(record)['generation'] == generation) then
        listed[#listed + 1] = { key, record }
    end
end

if listing == 'scheduled' then
    local from = tonumber(after) or 0
    local keys = redis.call('ZRANGE', queue, from, from + limit - 1)
    for _, key in ipairs(keys) do
        list_current(key, nil)
    end
    local next = ''
    if #keys == limit and redis.call('ZCARD', queue) > from + limit then
        next = int(from + limit)
    end
    return { next, listed }
end

local function entry_message(id)
    local entries = redis.call('XRANGE', stream, id, id)
    if #entries == 0 or not entries[1][2] then
        return nil
    end
    return to_table(entries[1][2])
end

local last_id = ''
if listing == 'queued' then
    local start = after
    if start == '' then
        start = '-'
        local groups = redis.pcall('XINFO', 'GROUPS', stream)
        if type(groups) == 'table' and not groups.err then
            for _, group in ipairs(groups) do
                local fields = to_table(group)
                if fields['name'] == GROUP then
                    start = '(' .. fields['last-delivered-id']
                end
            end
        end
    else
        start = '(' .. start
    end
    local entries = redis.pcall('XRANGE', stream, start, '+', 'COUNT', limit)
    if type(entries) == 'table' and not entries.err then
        for _, entry in ipairs(entries) do
            last_id = entry[1]
            local message = to_table(entry[2])
            if message['key'] then
                list_current(message['key'], message['generation'])
            end
        end
        if #entries < limit then
            last_id = ''
        end
    end
elseif listing == 'running' then
    local start = '-'
    if after ~= '' then
        start = '(' .. after
    end
    local pending = redis.pcall('XPENDING', stream, GROUP, start, '+', limit)
    if type(pending) == 'table' and not pending.err then
        for _, entry in ipairs(pending) do
            last_id = entry[1]
            local message = entry_message(entry[1])
            if message and message['key'] then
                list_current(message['key'], message['generation'])
            end
        end
        if #pending < limit then
            last_id = ''
        end
    end
else
    return redis.error_reply('page.lua: unknown listing ' .. tostring(listing))
end
return { last_id, listed }
