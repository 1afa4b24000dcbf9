-- ARGV: n (1 = the winner, 2 = the runner-up's second chance), user, price
-- Claims offer n once, after offer n-1; whoever claims it makes the hold.
local m = load()
if not m then return fail('UNKNOWN_AUCTION') end
if m.state ~= 'closed' then return fail('BAD_STATE') end
local n, have = tonumber(ARGV[1]), tonumber(redis.call('HGET', KM, 'offer_n') or '0')
if have >= n then return {'R', ''} end
if have ~= n - 1 then return fail('BAD_STATE') end
m.seq = m.seq + 1
append({s = m.seq, t = NOW, k = 'offer', n = n, u = ARGV[2], p = tonumber(ARGV[3])})
redis.call('HSET', KM, 'seq', m.seq, 'offer_n', n, 'offer_user', ARGV[2], 'offer_price', ARGV[3], 'offer_at', NOW,
           'offer_lot', '', 'offer_rid', '')
return {'N', ''}
