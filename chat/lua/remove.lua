-- Remove (hide) a message: flag it, never delete it (moderators and the replay keep it, flagged).
-- KEYS: 1 stream, 2 removed hash, 3 cfg   ARGV: 1 message id, 2 remover user
-- -> {at_ms, 1 if newly removed else 0, fields...} | {-1} when no such message
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return {-1} end
local fresh = redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2] .. '|' .. now)
if redis.call('HGET', KEYS[3], 'pin') == ARGV[1] then redis.call('HDEL', KEYS[3], 'pin') end
local out = {now, fresh}
for _, v in ipairs(found[1][2]) do out[#out + 1] = v end
return out
