--[[
  Hands one consumer up to `count` queue entries of one sale: first entries another
  consumer took more than `min idle` ago without acknowledging (a dead writer), then new ones.

  Input:
    KEYS[1] orders stream
    KEYS[2] state hash: remaining, stock, epoch

    ARGV[1] consumer group of the order writers
    ARGV[2] consumer name
    ARGV[3] count, at least 1
    ARGV[4] min idle time in milliseconds before an entry is taken from its consumer

  Output: {claimed, fresh}
    claimed  a list of {entry id, deliveries, {field, value, ...}}: entries taken over
    fresh    a list of {entry id, {field, value, ...}}: new entries, delivered once; passed on
             as XREADGROUP gives them, since rebuilding a thousand entries in Lua costs Redis
             CPU for nothing
    Both empty when the stream or group is gone and the sale has no epoch: a lost sale
    waits to be rebuilt by a warm-up rather than silently starting an empty queue.
]]
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local count = tonumber(ARGV[3])
local out = {}

-- Only the first idle entry is looked for here: XAUTOCLAIM checks that every pending entry
-- it passes still exists in the stream, which costs about 1 us each, and the entries a live
-- writer holds (its batch in hand, the one it read ahead) are pending and not idle.
local idle = redis.pcall('XPENDING', stream, group, 'IDLE', ARGV[4], '-', '+', 1)
if type(idle) == 'table' and idle.err then
  if not string.find(idle.err, 'NOGROUP', 1, true) then
    return redis.error_reply(idle.err)
  end
  if redis.call('HEXISTS', KEYS[2], 'epoch') == 0 then
    return {out, {}}
  end
  -- The sale is trusted but its group vanished (the stream was deleted or evicted).
  redis.call('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
  idle = {}
end

local claimed = {'0-0', {}}
if idle[1] then
  claimed = redis.call('XAUTOCLAIM', stream, group, consumer, ARGV[4], idle[1][1], 'COUNT', count)
end

for _, entry in ipairs(claimed[2]) do
  -- Deleted entries come back without fields (Redis 6.2); there is nothing to hand out.
  if type(entry[2]) == 'table' then
    local pending = redis.call('XPENDING', stream, group, entry[1], entry[1], 1)[1]
    out[#out + 1] = {entry[1], pending and pending[4] or 2, entry[2]}
  end
end

local room = count - #out
if room > 0 then
  local fresh = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', room, 'STREAMS', stream, '>')
  if fresh then
    return {out, fresh[1][2]}
  end
end
return {out, {}}
