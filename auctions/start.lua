-- Start now: ends_at = now + duration; pre-bids become max bids (highest first, ties to the earlier).
local m = load()
if not m then return fail('UNKNOWN_AUCTION') end
if m.state == 'live' then return fail('AUCTION_STARTED', {ends_at = m.ends_at}) end
if m.state ~= 'scheduled' then return fail('AUCTION_CLOSED') end
m.state, m.started_at, m.ends_at = 'live', NOW, NOW + m.dur
local flat = redis.call('HGETALL', KP)
local pre = {}
for i = 1, #flat, 2 do
  local d = cjson.decode(flat[i + 1])
  pre[#pre + 1] = {u = flat[i], a = d.a, s = d.s, n = d.n}
end
table.sort(pre, function(x, y) if x.a ~= y.a then return x.a > y.a end return x.s < y.s end)
if #pre >= 1 then
  m.leader, m.llabel, m.lmax = pre[1].u, pre[1].n, pre[1].a
  if #pre == 1 then
    m.high = m.start
  elseif pre[2].a == pre[1].a then
    m.high = pre[1].a
  else
    m.high = math.min(pre[1].a, math.max(m.start, pre[2].a + inc_of(m.inc, pre[2].a)))
  end
  m.bids = #pre
end
m.seq = m.seq + 1
m.v = m.v + 1
append({s = m.seq, t = NOW, k = 'start', h = m.high, l = m.leader, e = m.ends_at})
save(m)
local losers = {}
for i = 2, #pre do losers[#losers + 1] = pre[i].u end
return {'N', cjson.encode({ok = true, state = 'live', started_at = NOW, ends_at = m.ends_at, high = m.high,
                           leader_label = m.llabel, bids = m.bids, v = m.v, outbid = losers})}
