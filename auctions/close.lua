-- Close at the server instant: NOT_YET before ends_at; once: the winner (if any) and the price.
local m = load()
if not m then return fail('UNKNOWN_AUCTION') end
if m.state == 'closed' or m.state == 'cancelled' then return {'R', redis.call('HGET', KM, 'closed_json') or ''} end
if m.state == 'scheduled' then return fail('NOT_STARTED') end
if NOW < m.ends_at then return fail('NOT_YET', {ends_at = m.ends_at}) end
local result, winner, price = 'sold', m.leader, m.high
if m.leader == '' then
  result, winner, price = 'no_bids', '', 0
elseif m.reserve > 0 and m.lmax < m.reserve then
  result, winner, price = 'reserve_not_met', '', 0
elseif m.reserve > 0 and price < m.reserve then
  price = m.reserve  -- the leader's max covers the reserve: the price goes up to it
end
m.state = 'closed'
m.seq = m.seq + 1
m.v = m.v + 1
append({s = m.seq, t = NOW, k = 'close', w = winner, p = price, r = result})
save(m)
local reply = cjson.encode({ok = true, state = 'closed', result = result, winner = winner,
                            winner_label = (winner ~= '' and m.llabel or ''), price = price, bids = m.bids,
                            ends_at = m.ends_at, closed_at = NOW, v = m.v})
redis.call('HSET', KM, 'result', result, 'winner', winner, 'price', price, 'closed_at', NOW, 'closed_json', reply)
-- bounded: retried bids are answered from `req` for a day after the end; the log and meta stay for the audit
redis.call('EXPIRE', KQ, 86400)
redis.call('EXPIRE', KRL, 86400)
return {'N', reply}
