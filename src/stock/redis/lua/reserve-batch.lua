--[[
  Reserves one unit each for a batch of buyers of one sale, in the order given, and queues
  their orders, in one atomic step. A batch of one is a single purchase; the API node sends
  every purchase of a sale that arrived in the same turn of its event loop as one batch, so
  Redis runs one script call instead of dozens (the call itself, not the work, was most of
  the cost of a purchase here).

  Input:
    KEYS[1] state hash: remaining, stock, epoch
    KEYS[2] buyers hash: user id -> order id
    KEYS[3] holders hash: order id -> user id, for orders still queued
    KEYS[4] orders stream, drained by the order writers
    KEYS[4 + i] rate-limit counter of the i-th buyer in this second; only when ARGV[1] > 0

    ARGV[1] attempts allowed per user per second; 0 = no limit
    then for the i-th buyer, at ARGV[2 + 3(i-1)] ...:
      user id
      order id to use if a unit is reserved
      now, milliseconds since the epoch: the order's creation time

  Output: a flat list, two items per buyer in the order given: code, order id or ''
    0, orderId  Reserved: a unit was taken and the order queued
    1, orderId  Duplicate: the order this user already holds (also when bought earlier in this batch)
    2, ''       SoldOut
    3, ''       RateLimited
    4, ''       NotWarmed: the epoch is missing, so the state cannot be trusted
]]
local count = (#ARGV - 1) / 3
local out = {}

if redis.call('HEXISTS', KEYS[1], 'epoch') == 0 then
  for i = 1, count do
    out[2 * i - 1] = 4
    out[2 * i] = ''
  end
  return out
end

local limit = tonumber(ARGV[1])
local remaining = tonumber(redis.call('HGET', KEYS[1], 'remaining')) or 0
local taken = 0

for i = 1, count do
  local user, order, now = ARGV[3 * i - 1], ARGV[3 * i], ARGV[3 * i + 1]
  local code, id = nil, ''
  if limit > 0 then
    local attempts = redis.call('INCR', KEYS[4 + i])
    if attempts == 1 then
      -- Longer than the second the key names, so small clock differences between API nodes
      -- cannot expire a bucket that is still being counted.
      redis.call('PEXPIRE', KEYS[4 + i], 2000)
    end
    if attempts > limit then
      code = 3
    end
  end
  if code == nil then
    -- After the rate limit, so a client hammering the route is slowed even once it holds an
    -- order; within the limit a retry gets that order back.
    local existing = redis.call('HGET', KEYS[2], user)
    if existing then
      code, id = 1, existing
    elseif remaining - taken <= 0 then
      code = 2
    else
      taken = taken + 1
      redis.call('HSET', KEYS[2], user, order)
      redis.call('HSET', KEYS[3], order, user)
      redis.call('XADD', KEYS[4], '*', 'orderId', order, 'userId', user, 'createdAt', now)
      code, id = 0, order
    end
  end
  out[2 * i - 1] = code
  out[2 * i] = id
end

if taken > 0 then
  redis.call('HINCRBY', KEYS[1], 'remaining', -taken)
end
return out
