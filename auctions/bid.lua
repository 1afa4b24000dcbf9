-- ARGV: kind ('bid' | 'max'), user, amount (bids: 0 = the next increment), request_id, label, rate/s, burst
-- A bid or max bid: idempotent per (user, request_id), rate-limited per user, refused after ends_at.
local kind, user, amount, rid, label = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local rate, burst = tonumber(ARGV[6]), tonumber(ARGV[7])
local m = load()
if not m then return fail('UNKNOWN_AUCTION') end
local rkey = user .. '\n' .. rid
local prev = redis.call('HGET', KQ, rkey)
if prev then return {'R', prev} end

-- rate limit: a token bucket per user on Redis's clock (every attempt takes a token)
local tokens = burst
local b = redis.call('HGET', KRL, user)
if b then
  local sp = string.find(b, ' ')
  tokens = math.min(burst, tonumber(string.sub(b, 1, sp - 1)) + (NOW - tonumber(string.sub(b, sp + 1))) * rate / 1000)
end
if tokens < 1 then
  return fail('RATE_LIMITED', {retry_after = math.ceil((1 - tokens) * 1000 / rate)})
end
redis.call('HSET', KRL, user, string.format('%.6f %d', tokens - 1, NOW))

if m.state == 'closed' or m.state == 'cancelled' then return fail('AUCTION_CLOSED', {ends_at = m.ends_at}) end
if m.state == 'scheduled' then  -- a pre-bid: a max bid applied when the auction starts
  if kind ~= 'max' then return fail('NOT_STARTED') end
  if amount < m.start then return fail('BID_TOO_LOW', {min = m.start}) end
  local old = redis.call('HGET', KP, user)
  if old then
    local oa = cjson.decode(old).a
    if amount <= oa then return fail('MAX_TOO_LOW', {min = oa + 1}) end
  end
  m.seq = m.seq + 1
  m.v = m.v + 1
  redis.call('HSET', KP, user, cjson.encode({a = amount, s = m.seq, n = label}))
  append({s = m.seq, t = NOW, k = 'pre', u = user, a = amount})
  redis.call('HSET', KM, 'seq', m.seq, 'v', m.v)
  local reply = cjson.encode({ok = true, kind = 'pre', state = 'scheduled', max = amount, high = 0, leading = false,
                              bids = m.bids, ends_at = 0, v = m.v, extended = false, at = NOW, outbid = ''})
  redis.call('HSET', KQ, rkey, reply)
  return {'N', reply}
end

if NOW >= m.ends_at then return fail('AUCTION_CLOSED', {ends_at = m.ends_at}) end
local has = m.leader ~= ''
local min_next = m.start
if has then min_next = m.high + inc_of(m.inc, m.high) end
local outbid = ''
local leading = false
local own = false
if kind == 'bid' then
  if user == m.leader then return fail('OWN_HIGH_BID', {high = m.high}) end
  if amount == 0 then amount = min_next end
  if amount < min_next then return fail('BID_TOO_LOW', {min = min_next}) end
  if (not has) or amount > m.lmax then
    outbid = m.leader
    m.leader, m.llabel, m.high, m.lmax, leading = user, label, amount, amount, true
  elseif amount >= m.lmax then  -- a tie goes to the earlier max
    m.high = m.lmax
  else
    m.high = math.min(m.lmax, amount + inc_of(m.inc, amount))
  end
else
  if user == m.leader then
    if amount <= m.lmax then return fail('MAX_TOO_LOW', {min = m.lmax + 1}) end
    m.lmax, leading, own = amount, true, true  -- raising one's own max moves no price
  else
    if amount < min_next then return fail('BID_TOO_LOW', {min = min_next}) end
    if not has then
      m.leader, m.llabel, m.high, m.lmax, leading = user, label, m.start, amount, true
    elseif amount > m.lmax then
      outbid = m.leader
      m.high = math.min(amount, m.lmax + inc_of(m.inc, m.lmax))
      m.leader, m.llabel, m.lmax, leading = user, label, amount, true
    elseif amount >= m.lmax then
      m.high = m.lmax
    else
      m.high = math.min(m.lmax, amount + inc_of(m.inc, amount))
    end
  end
end
local extended = false
if not own then
  m.bids = m.bids + 1
  if (not m.sudden) and m.ends_at - NOW < m.counter then  -- counter-bid time
    m.ends_at = NOW + m.counter
    extended = true
  end
end
m.seq = m.seq + 1
m.v = m.v + 1
append({s = m.seq, t = NOW, k = kind, u = user, a = amount, h = m.high, l = m.leader, e = m.ends_at})
save(m)
local reply = {ok = true, kind = kind, state = 'live', amount = amount, high = m.high, leading = leading,
               leader_label = m.llabel, bids = m.bids, ends_at = m.ends_at, v = m.v, extended = extended,
               min_next = m.high + inc_of(m.inc, m.high), at = NOW, outbid = outbid}
if leading then reply.max = m.lmax end
reply = cjson.encode(reply)
redis.call('HSET', KQ, rkey, reply)
return {'N', reply}
