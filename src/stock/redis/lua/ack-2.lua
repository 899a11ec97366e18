--[[
  Removes entries committed to the database from a sale's queue: acknowledges them, deletes
  them from the stream and forgets their orders as queued. The caller names each entry's
  order, so nothing is looked up.

  Deleting: every entry below the oldest one still pending, or below the first one not yet
  delivered when none is pending, has been acknowledged, so one XTRIM MINID drops them
  whole. XDEL has to find each entry inside its stream node, about 4 us apiece (measured:
  the largest part of what the writer cost Redis per order). Acknowledged entries above
  that line (a writer that finished before another one that read earlier) are deleted with
  XDEL as before. Either way the stream holds exactly the entries not yet acknowledged.
  This takes the writers' group to be the stream's only reader, as everywhere in the store:
  another group's undelivered entries below the line would go too.

  Input:
    KEYS[1] orders stream
    KEYS[2] holders hash: order id -> user id, for orders still queued

    ARGV[1] consumer group of the order writers
    ARGV[2] n, how many entries follow
    ARGV[3 .. 2+n] entry ids
    ARGV[3+n .. 2+2n] order ids: the i-th is the order held by the i-th entry

  Output: how many entries were removed from the stream (entries already gone are skipped;
    their orders were forgotten when they left)
]]
local n = tonumber(ARGV[2])
if n == nil or #ARGV ~= 2 + 2 * n then
  return redis.error_reply('ERR ack: expected a count and that many entry ids and order ids')
end
-- unpack() fails beyond Lua's C stack (about 8000 values), and batches may be larger.
local CHUNK = 1000
for first = 1, n, CHUNK do
  local last = math.min(first + CHUNK - 1, n)
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2 + first, 2 + last))
  redis.call('HDEL', KEYS[2], unpack(ARGV, 2 + n + first, 2 + n + last))
end

local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end

-- The line below which everything is acknowledged; nil when it cannot be known (no group).
local line = nil
local summary = redis.pcall('XPENDING', KEYS[1], ARGV[1])
if type(summary) == 'table' and not summary.err then
  if summary[2] then
    line = summary[2]
  else
    for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
      local fields = {}
      for i = 1, #group, 2 do fields[group[i]] = group[i + 1] end
      if fields['name'] == ARGV[1] then
        local ms, seq = string.match(fields['last-delivered-id'], '^(%d+)-(%d+)$')
        line = ms .. '-' .. tostring(tonumber(seq) + 1)
      end
    end
  end
end

local removed = 0
local lineMs, lineSeq = 0, 0
if line then
  removed = redis.call('XTRIM', KEYS[1], 'MINID', line)
  lineMs, lineSeq = parse(line)
end
local above = {}
for i = 3, 2 + n do
  local ms, seq = parse(ARGV[i])
  if ms == nil or ms > lineMs or (ms == lineMs and seq >= lineSeq) then
    above[#above + 1] = ARGV[i]
  end
end
for first = 1, #above, CHUNK do
  removed = removed + redis.call('XDEL', KEYS[1], unpack(above, first, math.min(first + CHUNK - 1, #above)))
end
return removed
