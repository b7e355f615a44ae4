// The Lua scripts the chat plugin runs in Redis (loaded once, run by SHA).
#pragma once

namespace aurora::chat {

// The send path in one atomic round trip (DESIGN §3): XADD to the stream
// and PUBLISH the envelope with the new id inside, so a message seen live is
// always in the stream. A ref seen again within the dedup window returns the
// first message's id instead of adding a second message.
//   KEYS[1] stream  KEYS[2] ref key (only when the client sent a ref)
//   ARGV: channel, roomId, userId, text, username, ref, prefix, middle,
//         suffix, dedup_ttl_s, maxlen (0 = no trimming), and only when the
//         message has some, attachments (a JSON array of upload descriptions)
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
if ARGV[12] and ARGV[12] ~= '' then table.insert(args, 'attachments'); table.insert(args, ARGV[12]) end
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

// A change to a stored message (edit, delete, reaction), in the same
// stream as the messages: ordered with them, replayed by resume, stored by
// ingest. The target must be a message of the room still in the stream.
// Per message, a state hash remembers what the stream alone cannot answer
// at once: deleted (a tombstone: no change after it), and who reacted with
// what (field "r:<emoji>\n<userId>"), with counts to bound both.
//   KEYS[1] stream  KEYS[2] state hash  KEYS[3] ref key (only with a ref)
//   ARGV: 1 channel, 2 roomId, 3 userId, 4 username, 5 kind (edit|delete|reaction),
//         6 target id, 7 text (edit) or emoji (reaction), 8 op (add|remove),
//         9 moderator ("1": may delete anyone's), 10 ref, 11 prefix, 12 middle,
//         13 suffix, 14 dedup_ttl_s, 15 maxlen, 16 state_ttl_s,
//         17 max distinct emojis per message, 18 max reactions per message,
//         19 max changes per message
// A message may be changed for state_ttl_s after it was sent (its state
// lives at least that long: every change renews it), so a tombstone
// outlives every change it refuses. The target id is canonical
// (<ms>-<seq>, the plugin normalised it) and must be the entry's own.
// Returns {1, id} for a new change, {0, id} for a duplicate ref, {2, code}
// refused (not_found, too_old, not_author, deleted, too_many_reactions,
// too_many_changes), {3, ""} a reaction already there (add) or not there
// (remove): nothing written.
inline constexpr const char *kChangeScript = R"lua(
if #KEYS > 2 then
  local prev = redis.call('GET', KEYS[3])
  if prev then return {0, prev} end
end
local found = redis.call('XRANGE', KEYS[1], ARGV[6], ARGV[6])
if #found == 0 or found[1][1] ~= ARGV[6] then return {2, 'not_found'} end
local now = redis.call('TIME')
local sent_ms = tonumber(string.match(ARGV[6], '^(%d+)'))
if sent_ms < tonumber(now[1]) * 1000 - tonumber(ARGV[16]) * 1000 then return {2, 'too_old'} end
local f = found[1][2]
local room, author, kind
for i = 1, #f, 2 do
  if f[i] == 'roomId' then room = f[i + 1]
  elseif f[i] == 'userId' then author = f[i + 1]
  elseif f[i] == 'kind' then kind = f[i + 1] end
end
if kind or room ~= ARGV[2] or string.sub(author or '', 1, 5) == 'anon-' then return {2, 'not_found'} end
if redis.call('HEXISTS', KEYS[2], 'deleted') == 1 then return {2, 'deleted'} end
if tonumber(redis.call('HGET', KEYS[2], 'changes') or '0') >= tonumber(ARGV[19]) then return {2, 'too_many_changes'} end
local what = ARGV[5]
local fields = {'*', 'roomId', ARGV[2], 'userId', ARGV[3], 'username', ARGV[4], 'kind', what, 'target', ARGV[6]}
if what == 'edit' then
  if author ~= ARGV[3] then return {2, 'not_author'} end
  table.insert(fields, 'text'); table.insert(fields, ARGV[7])
elseif what == 'delete' then
  if author ~= ARGV[3] and ARGV[9] ~= '1' then return {2, 'not_author'} end
  redis.call('HSET', KEYS[2], 'deleted', '1')
else
  local who = 'r:' .. ARGV[7] .. '\n' .. ARGV[3]
  local count = 'c:' .. ARGV[7]
  if ARGV[8] == 'add' then
    if redis.call('HEXISTS', KEYS[2], who) == 1 then return {3, ''} end
    if tonumber(redis.call('HGET', KEYS[2], 'reactions') or '0') >= tonumber(ARGV[18]) then
      return {2, 'too_many_reactions'}
    end
    if redis.call('HEXISTS', KEYS[2], count) == 0 and
       tonumber(redis.call('HGET', KEYS[2], 'emojis') or '0') >= tonumber(ARGV[17]) then
      return {2, 'too_many_reactions'}
    end
    if redis.call('HINCRBY', KEYS[2], count, 1) == 1 then redis.call('HINCRBY', KEYS[2], 'emojis', 1) end
    redis.call('HINCRBY', KEYS[2], 'reactions', 1)
    redis.call('HSET', KEYS[2], who, '1')
  else
    if redis.call('HDEL', KEYS[2], who) == 0 then return {3, ''} end
    redis.call('HINCRBY', KEYS[2], 'reactions', -1)
    if redis.call('HINCRBY', KEYS[2], count, -1) <= 0 then
      redis.call('HDEL', KEYS[2], count)
      redis.call('HINCRBY', KEYS[2], 'emojis', -1)
    end
  end
  table.insert(fields, 'emoji'); table.insert(fields, ARGV[7])
  table.insert(fields, 'op'); table.insert(fields, ARGV[8])
end
if ARGV[10] ~= '' then table.insert(fields, 'ref'); table.insert(fields, ARGV[10]) end
local args = {KEYS[1]}
if tonumber(ARGV[15]) > 0 then
  table.insert(args, 'MAXLEN'); table.insert(args, '~'); table.insert(args, ARGV[15])
end
for _, v in ipairs(fields) do table.insert(args, v) end
local id = redis.call('XADD', unpack(args))
local ms = string.match(id, '^(%d+)')
redis.call('PUBLISH', ARGV[1], ARGV[11] .. id .. ARGV[12] .. ms .. ARGV[13])
if #KEYS > 2 then redis.call('SET', KEYS[3], id, 'EX', ARGV[14]) end
redis.call('HINCRBY', KEYS[2], 'changes', 1)
redis.call('EXPIRE', KEYS[2], ARGV[16])
return {1, id}
)lua";

// Read receipts of one room, published together (SendPipeline: at most one
// event per room and receipts_interval_ms on each replica). Each reader's
// position moves forward only; the event lists those that moved.
//   KEYS[1] chat:reads:<room> (sorted set: userId by the ms of its id)
//   KEYS[2] chat:readids:<room> (hash: userId -> "<id>\t<username>")
//   ARGV: 1 channel, 2 event head ('{"type":"receipts","room":R,"reads":['),
//         3 ttl_s, then per reader: userId, id, ms, username, JSON object
// Returns how many moved.
inline constexpr const char *kReceiptsScript = R"lua(
local function parse(s)
  local ms, seq = string.match(s or '', '^(%d+)-(%d+)')
  return tonumber(ms), tonumber(seq)
end
local moved = {}
for i = 4, #ARGV, 5 do
  local user, id = ARGV[i], ARGV[i + 1]
  local cur = redis.call('HGET', KEYS[2], user)
  local forward = true
  if cur then
    local cm, cs = parse(cur)
    local nm, ns = parse(id)
    if cm and nm and (nm < cm or (nm == cm and ns <= cs)) then forward = false end
  end
  if forward then
    redis.call('HSET', KEYS[2], user, id .. '\t' .. ARGV[i + 3])
    redis.call('ZADD', KEYS[1], ARGV[i + 2], user)
    table.insert(moved, ARGV[i + 4])
  end
end
if #moved > 0 then
  redis.call('PUBLISH', ARGV[1], ARGV[2] .. table.concat(moved, ',') .. ']}')
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
return #moved
)lua";

// A room's newest readers: {userIds, "<id>\t<username>" values, total}.
//   KEYS[1] chat:reads:<room>  KEYS[2] chat:readids:<room>  ARGV[1] how many
inline constexpr const char *kReceiptsSnapshotScript = R"lua(
local ids = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #ids == 0 then return {{}, {}, 0} end
return {ids, redis.call('HMGET', KEYS[2], unpack(ids)), redis.call('ZCARD', KEYS[1])}
)lua";

}  // namespace aurora::chat
