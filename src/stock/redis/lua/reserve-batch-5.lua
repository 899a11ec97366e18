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
    KEYS[5] rate-limit counters of this sale for the current second: user id -> attempts;
            touched only when ARGV[1] > 0. One hash per sale and second rather than a key per user
            and second: a field costs Redis far less than a key with its own expiry, and
            nearly every buyer of a flash sale makes a new one. The batch counts in the
            second it was sent in (a batch spans a few milliseconds).

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
-- Always five keys, even without a limit: ioredis routes a script call on a Redis Cluster
-- (and groups its auto-pipelines) by the first argument, which must be a key, not a count.
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
  if limit > 0 and redis.call('HINCRBY', KEYS[5], user, 1) > limit then
    code = 3
  end
  if code == nil then
    -- After the rate limit, so a client hammering the route is slowed even once it holds an
    -- order; within the limit a retry gets that order back. While units are left, HSETNX
    -- both checks for an earlier order and records this one: one call, not HGET then HSET.
    if remaining - taken > 0 then
      if redis.call('HSETNX', KEYS[2], user, order) == 1 then
        taken = taken + 1
        redis.call('HSET', KEYS[3], order, user)
        redis.call('XADD', KEYS[4], '*', 'orderId', order, 'userId', user, 'createdAt', now)
        code, id = 0, order
      else
        code, id = 1, redis.call('HGET', KEYS[2], user)
      end
    else
      local existing = redis.call('HGET', KEYS[2], user)
      if existing then
        code, id = 1, existing
      else
        code = 2
      end
    end
  end
  out[2 * i - 1] = code
  out[2 * i] = id
end

if taken > 0 then
  redis.call('HINCRBY', KEYS[1], 'remaining', -taken)
end
if limit > 0 then
  -- After the loop, which made the hash if it was new. Longer than the second the key
  -- names, so small clock differences between API nodes cannot expire a bucket that is
  -- still being counted.
  redis.call('PEXPIRE', KEYS[5], 2000)
end
return out
