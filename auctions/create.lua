-- ARGV: owner, sku, currency, start, dur_ms, counter_ms, sudden (0/1), increments JSON, reserve (0 = none), title, id
if redis.call('EXISTS', KM) == 1 then return {'R', ''} end
redis.call('HSET', KM, 'id', ARGV[11], 'owner', ARGV[1], 'sku', ARGV[2], 'currency', ARGV[3], 'start', ARGV[4],
           'dur', ARGV[5], 'counter', ARGV[6], 'sudden', ARGV[7], 'inc', ARGV[8], 'reserve', ARGV[9],
           'title', ARGV[10], 'state', 'scheduled', 'created_at', NOW, 'started_at', 0, 'ends_at', 0,
           'high', 0, 'leader', '', 'lmax', 0, 'llabel', '', 'bids', 0, 'v', 0, 'seq', 0, 'offer_n', 0)
return {'N', ''}
