--[[
  Removes entries committed to the database from a sale's queue: acknowledges them, deletes
  them from the stream and forgets their orders as queued.

  Input:
    KEYS[1] orders stream
    KEYS[2] holders hash: order id -> user id, for orders still queued

    ARGV[1] consumer group of the order writers
    ARGV[2..n] entry ids

  Output: how many entries were removed (entries already gone are skipped)
]]
local removed = 0
for i = 2, #ARGV do
  local entry = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])[1]
  if entry then
    local fields = entry[2]
    for j = 1, #fields, 2 do
      if fields[j] == 'orderId' then
        redis.call('HDEL', KEYS[2], fields[j + 1])
      end
    end
  end
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  removed = removed + redis.call('XDEL', KEYS[1], ARGV[i])
end
return removed
