-- Only a scheduled auction may be cancelled: once started, it runs to its end.
local m = load()
if not m then return fail('UNKNOWN_AUCTION') end
if m.state == 'cancelled' then return {'R', ''} end
if m.state == 'live' then return fail('AUCTION_STARTED', {ends_at = m.ends_at}) end
if m.state == 'closed' then return fail('AUCTION_CLOSED') end
m.state = 'cancelled'
m.seq = m.seq + 1
m.v = m.v + 1
append({s = m.seq, t = NOW, k = 'cancel'})
save(m)
redis.call('HSET', KM, 'closed_at', NOW, 'result', 'cancelled')
redis.call('EXPIRE', KQ, 86400)
redis.call('EXPIRE', KRL, 86400)
return {'N', ''}
