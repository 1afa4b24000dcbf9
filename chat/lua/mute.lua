-- Time a user out until now + seconds (0 lifts it). KEYS: 1 mutes   ARGV: 1 user, 2 seconds
-- -> until ms (0 when lifted)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = tonumber(ARGV[2])
if s <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
local untl = now + s * 1000
redis.call('HSET', KEYS[1], ARGV[1], untl)
return untl
