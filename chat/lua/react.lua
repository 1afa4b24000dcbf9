-- One node's reaction counts since its last flush, added to the broadcast's totals.
-- KEYS[1]: the reactions hash; ARGV: name, n, name, n, ...
-- Bumps `_seq` in the same step and returns every field: totals with a higher `_seq` always
-- include those with a lower one, so the fan-out can drop an older total that arrives late.
for i = 1, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('HINCRBY', KEYS[1], '_seq', 1)
return redis.call('HGETALL', KEYS[1])
