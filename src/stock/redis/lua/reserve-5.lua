--[[
  Reserves one unit of a sale for a user and queues the order, in one atomic step.

  Input:
    KEYS[1] state hash: remaining, stock, epoch
    KEYS[2] buyers hash: user id -> order id
    KEYS[3] holders hash: order id -> user id, for orders still queued
    KEYS[4] orders stream, drained by the order writers
    KEYS[5] rate-limit counter of this user in this second

    ARGV[1] user id
    ARGV[2] order id to use if a unit is reserved
    ARGV[3] now, milliseconds since the epoch: the order's creation time
    ARGV[4] attempts allowed per user per second; 0 = no limit

  Output: {code} or {code, order id}
    {0, orderId}  Reserved: a unit was taken and the order queued
    {1, orderId}  Duplicate: the order this user already holds
    {2}           SoldOut
    {3}           RateLimited
    {4}           NotWarmed: the epoch is missing, so the state cannot be trusted
]]
if redis.call('HEXISTS', KEYS[1], 'epoch') == 0 then
  return {4}
end

local limit = tonumber(ARGV[4])
if limit > 0 then
  local attempts = redis.call('INCR', KEYS[5])
  if attempts == 1 then
    -- Longer than the second the key names, so small clock differences between API nodes
    -- cannot expire a bucket that is still being counted.
    redis.call('PEXPIRE', KEYS[5], 2000)
  end
  if attempts > limit then
    return {3}
  end
end

-- After the rate limit, so a client hammering the route is slowed even once it holds an
-- order; within the limit a retry gets that order back.
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then
  return {1, existing}
end

local remaining = tonumber(redis.call('HGET', KEYS[1], 'remaining'))
if remaining == nil or remaining <= 0 then
  return {2}
end

redis.call('HINCRBY', KEYS[1], 'remaining', -1)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[1])
redis.call('XADD', KEYS[4], '*', 'orderId', ARGV[2], 'userId', ARGV[1], 'createdAt', ARGV[3])
return {0, ARGV[2]}
