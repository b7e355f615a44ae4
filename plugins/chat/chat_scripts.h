// The Lua scripts the chat plugin runs in Redis (loaded once, run by SHA).
#pragma once

namespace aurora::chat {

// The send path in one atomic round trip (DESIGN §3): XADD to the stream
// and PUBLISH the envelope with the new id inside, so a message seen live is
// always in the stream. A ref seen again within the dedup window returns the
// first message's id instead of adding a second message.
//   KEYS[1] stream  KEYS[2] ref key (only when the client sent a ref)
//   ARGV: channel, roomId, userId, text, username, ref, prefix, middle,
//         suffix, dedup_ttl_s, maxlen (0 = no trimming)
// Returns {1, id} for a new message, {0, id} for a duplicate ref.
inline constexpr const char *kSendScript = R"lua(
if #KEYS > 1 then
  local prev = redis.call('GET', KEYS[2])
  if prev then return {0, prev} end
end
local args = {KEYS[1]}
if tonumber(ARGV[11]) > 0 then
  table.insert(args, 'MAXLEN'); table.insert(args, '~'); table.insert(args, ARGV[11])
end
for _, v in ipairs({'*', 'roomId', ARGV[2], 'userId', ARGV[3], 'text', ARGV[4], 'username', ARGV[5]}) do
  table.insert(args, v)
end
if ARGV[6] ~= '' then table.insert(args, 'ref'); table.insert(args, ARGV[6]) end
local id = redis.call('XADD', unpack(args))
local ms = string.match(id, '^(%d+)')
redis.call('PUBLISH', ARGV[1], ARGV[7] .. id .. ARGV[8] .. ms .. ARGV[9])
if #KEYS > 1 then redis.call('SET', KEYS[2], id, 'EX', ARGV[10]) end
return {1, id}
)lua";

// A read marker moves forward only.
//   KEYS[1] chat:read:<userId>   ARGV: room, id
// Returns the marker now stored.
inline constexpr const char *kReadScript = R"lua(
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local function parse(s)
  local ms, seq = string.match(s, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
if cur then
  local cm, cs = parse(cur)
  local nm, ns = parse(ARGV[2])
  if cm and nm and (nm < cm or (nm == cm and ns <= cs)) then return cur end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return ARGV[2]
)lua";

}  // namespace aurora::chat
