--[[
  Moves a poison entry from a sale's queue to its dead-letter stream, with the reason, and
  acknowledges it. Doing it twice changes nothing the second time.

  Input:
    KEYS[1] orders stream
    KEYS[2] dead-letter stream
    KEYS[3] holders hash: order id -> user id, for orders still queued

    ARGV[1] consumer group of the order writers
    ARGV[2] entry id
    ARGV[3] order id
    ARGV[4] user id
    ARGV[5] createdAt
    ARGV[6] deliveries
    ARGV[7] reason

  Output: 1 when the entry was moved, 0 when it had already left the queue
]]
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if redis.call('XDEL', KEYS[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XADD', KEYS[2], '*', 'entryId', ARGV[2], 'orderId', ARGV[3], 'userId', ARGV[4],
  'createdAt', ARGV[5], 'deliveries', ARGV[6], 'reason', ARGV[7])
redis.call('HDEL', KEYS[3], ARGV[3])
return 1
