-- Admit one chat message: ban, time-out, slow mode, token bucket, duplicate; then append it.
-- One round trip, atomic, Redis's own clock. A refusal changes nothing.
-- KEYS: 1 bans, 2 mutes, 3 cfg, 4 user state, 5 user dup zset, 6 stream, 7 questions zset,
--       8 request key (user + request id)
-- ARGV: 1 user, 2 staff(0|1), 3 rate per s, 4 burst, 5 dup window ms, 6 fingerprint,
--       7 history cap, 8 name, 9 role, 10 text, 11 kind, 12 questions cap, 13 request ttl ms (0: none)
-- -> {"OK", id, buy_enabled} | {"AGAIN", id, buy_enabled} (a retried request id) | {CODE, retry_after_ms}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local user = ARGV[1]
local staff = ARGV[2] == '1'
local cfg = redis.call('HMGET', KEYS[3], 'slow', 'buy')
local req_ttl = tonumber(ARGV[13])
if req_ttl > 0 then
  local first = redis.call('GET', KEYS[8])
  if first then
    return {'AGAIN', first, cfg[2] or '0'}
  end
end
if not staff then
  if redis.call('HEXISTS', KEYS[1], user) == 1 then
    return {'BANNED', 0}
  end
  local mute = tonumber(redis.call('HGET', KEYS[2], user) or '0')
  if mute > now then
    return {'MUTED', mute - now}
  end
end
local st = redis.call('HMGET', KEYS[4], 'tk', 'tt', 'last')
local slow = tonumber(cfg[1] or '0')
if not staff and slow > 0 and st[3] then
  local wait = tonumber(st[3]) + slow * 1000 - now
  if wait > 0 then
    return {'SLOW_MODE', wait}
  end
end
local rate = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local tokens = burst
if st[1] then
  local elapsed = now - tonumber(st[2])
  if elapsed < 0 then elapsed = 0 end
  tokens = math.min(burst, tonumber(st[1]) + elapsed * rate / 1000)
end
if tokens < 1 then
  return {'RATE_LIMITED', math.ceil((1 - tokens) * 1000 / rate)}
end
local window = tonumber(ARGV[5])
if window > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - window)
  local seen = redis.call('ZSCORE', KEYS[5], ARGV[6])
  if seen then
    return {'DUPLICATE', tonumber(seen) + window - now}
  end
end
redis.call('HSET', KEYS[4], 'tk', tokens - 1, 'tt', now, 'last', now)
local keep = math.ceil(burst / rate) * 1000
if slow * 1000 > keep then keep = slow * 1000 end
redis.call('PEXPIRE', KEYS[4], keep + 1000)
if window > 0 then
  redis.call('ZADD', KEYS[5], now, ARGV[6])
  redis.call('PEXPIRE', KEYS[5], window)
end
local id = redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[7], '*',
  'u', user, 'n', ARGV[8], 'r', ARGV[9], 't', ARGV[10], 'k', ARGV[11])
if req_ttl > 0 then
  redis.call('SET', KEYS[8], id, 'PX', req_ttl)
end
if ARGV[11] == 'question' then
  local ms = tonumber(string.match(id, '^(%d+)'))
  redis.call('ZADD', KEYS[7], ms, id)
  local over = redis.call('ZCARD', KEYS[7]) - tonumber(ARGV[12])
  if over > 0 then redis.call('ZREMRANGEBYRANK', KEYS[7], 0, over - 1) end
end
return {'OK', id, cfg[2] or '0'}
