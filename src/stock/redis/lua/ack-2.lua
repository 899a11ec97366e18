--[[
  Removes entries committed to the database from a sale's queue: acknowledges them, deletes
  them from the stream and forgets their orders as queued. The caller names each entry's
  order, so nothing is looked up: one variadic XACK, XDEL and HDEL per chunk of entries.

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
local removed = 0
for first = 1, n, CHUNK do
  local last = math.min(first + CHUNK - 1, n)
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2 + first, 2 + last))
  removed = removed + redis.call('XDEL', KEYS[1], unpack(ARGV, 2 + first, 2 + last))
  redis.call('HDEL', KEYS[2], unpack(ARGV, 2 + n + first, 2 + n + last))
end
return removed
