--[[
  Finishes a warm-up: swaps in the buyers and released sets staged by the caller, writes the
  state with its epoch, and makes sure the writers' consumer group exists. Until this runs
  the sale has no epoch (the caller paused it), so a half-loaded warm-up never sells.
  Queued orders are kept, and their users stay buyers even if the staged list missed them.

  Fenced: the caller paused the sale with a token (field `rebuilding` of the state). If the
  state holds another token now, another process paused the sale after this caller counted
  its orders: this caller's counts may be stale (the other one may even have finished and
  sold since), so nothing is changed and STALE_WARMUP is returned as an error. The process
  that paused last is the one whose warm-up lands.

  Input:
    KEYS[1] state hash: remaining, stock, epoch
    KEYS[2] buyers hash: user id -> order id
    KEYS[3] released set
    KEYS[4] holders hash: order id -> user id, for orders still queued
    KEYS[5] orders stream
    KEYS[6] staged buyers hash (may not exist: no buyers)
    KEYS[7] staged released set (may not exist: nothing released)

    ARGV[1] stock
    ARGV[2] remaining
    ARGV[3] epoch
    ARGV[4] consumer group of the order writers
    ARGV[5] the caller's pause token

  Output: 0, or the error STALE_WARMUP
]]
if redis.call('HGET', KEYS[1], 'rebuilding') ~= ARGV[5] then
  return redis.error_reply('STALE_WARMUP the sale was paused again by another process after this warm-up began')
end

redis.call('DEL', KEYS[2], KEYS[3])
if redis.call('EXISTS', KEYS[6]) == 1 then
  redis.call('RENAME', KEYS[6], KEYS[2])
  -- RENAME keeps the staging expiry; the live set must not expire.
  redis.call('PERSIST', KEYS[2])
end
if redis.call('EXISTS', KEYS[7]) == 1 then
  redis.call('RENAME', KEYS[7], KEYS[3])
  redis.call('PERSIST', KEYS[3])
end

local holders = redis.call('HGETALL', KEYS[4])
for i = 1, #holders, 2 do
  redis.call('HSETNX', KEYS[2], holders[i + 1], holders[i])
end

redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'stock', ARGV[1], 'remaining', ARGV[2], 'epoch', ARGV[3])

-- From id 0: entries that survived while the group did not are still owed to the database.
local created = redis.pcall('XGROUP', 'CREATE', KEYS[5], ARGV[4], '0', 'MKSTREAM')
if type(created) == 'table' and created.err and not string.find(created.err, 'BUSYGROUP', 1, true) then
  return redis.error_reply(created.err)
end
return 0
