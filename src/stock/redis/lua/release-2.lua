--[[
  Gives the unit held by one order back to sale, at most once per order.

  Input:
    KEYS[1] state hash: remaining, stock, epoch
    KEYS[2] released set: ids of orders whose unit already went back

    ARGV[1] order id

  Output:
    0  Released: remaining went up by one
    1  AlreadyReleased: nothing changed
    2  NotWarmed: the epoch is missing; retry after the sale is rebuilt
]]
-- A lost sale has no released set either: counting now would release twice after the rebuild.
if redis.call('HEXISTS', KEYS[1], 'epoch') == 0 then
  return 2
end
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then
  return 1
end
redis.call('HINCRBY', KEYS[1], 'remaining', 1)
return 0
