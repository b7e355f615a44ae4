// The chat protocol's vocabulary: what a valid room and text are, and the
// JSON the plugin sends. docs/protocol.md is the reference.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "attachment_rules.h"
#include "json.h"
#include "room_name.h"

namespace aurora::chat {

using plugin::valid_room;  // room_name.h

// Number of Unicode code points in valid UTF-8 text (the host checked it).
size_t code_points(std::string_view utf8);

// The live message envelope, built around the stream id that only Redis
// knows: payload = prefix + id + middle + <ms of id> + suffix. Seed fields
// (user, text, ts) plus type, id, room, userId and the sender's ref.
struct EnvelopeParts {
    std::string prefix, middle, suffix;
};
// `attachments`: a JSON array of upload descriptions, put in as it is ("":
// none, and no field).
EnvelopeParts message_envelope(std::string_view room, std::string_view username, std::string_view user_id,
                               std::string_view text, std::string_view attachments, std::string_view ref_json);
std::string message_json(std::string_view id, std::string_view room, std::string_view username,
                         std::string_view user_id, std::string_view text, std::string_view attachments,
                         std::string_view ref_json);

using plugin::kMaxAttachments;  // attachment_rules.h
using plugin::kUploadsPath;
using plugin::valid_upload_id;

// A stream entry's `attachments` field as the envelope carries it: 1 to
// kMaxAttachments upload descriptions {id, url, fileType, size, filename},
// printed anew; "" when absent or anything else (an entry another producer
// wrote is replayed without it, never as broken JSON): the rules ingest
// stores by (message_document.h).
std::string attachments_json(std::string_view field);

// A change to a stored message, built the same way around its own stream
// id (docs/protocol.md, "Changes to messages"):
//   {"type":"edit","id","room","target","user","userId","text","ts"[,"ref"]}
//   {"type":"delete","id","room","target","user","userId","ts"[,"ref"]}
//   {"type":"reaction","id","room","target","user","userId","emoji","op","ts"[,"ref"]}
// `kind` is the stream entry's: "edit", "delete" or "reaction"; `value` the
// edit's text or the reaction's emoji; `op` "add" or "remove".
struct Change {
    std::string_view kind, target, value, op;
};
EnvelopeParts change_envelope(std::string_view room, std::string_view username, std::string_view user_id,
                              const Change &change, std::string_view ref_json);
std::string change_json(std::string_view id, std::string_view room, std::string_view username,
                        std::string_view user_id, const Change &change);

// If `payload` is a message or change envelope, its stream id.
std::string_view envelope_id(std::string_view payload);

// One emoji for a reaction: a single emoji sequence (a pictograph, with its
// variation selector, skin tone, ZWJ sequence or tags; a flag; a keycap),
// at most kMaxEmojiBytes. Not a grapheme of text, not two emojis.
inline constexpr size_t kMaxEmojiBytes = 64;
bool valid_emoji(std::string_view utf8);

// {"type":"resumed","room":R,"count":N,"complete":bool,"last_id":ID[,"ref":F]}: the end of a resume's replay.
std::string resumed_json(std::string_view room, size_t count, bool complete, std::string_view last_id,
                         std::string_view ref_json);

// {"type":"presence","room":R,"event":"join"|"leave","user":NAME,"userId":UID}
std::string presence_event_json(std::string_view room, bool joined, std::string_view username,
                                std::string_view user_id);
// A presence member entry (the sorted set's member): {"userId":U,"user":N,"conn":C}.
std::string presence_member_json(std::string_view user_id, std::string_view username, std::string_view conn);
// {"type":"presence","room":R,"users":[{"userId","user"}...],"connections":N[,"truncated":true][,"ref":F]}
// from member entries (ZRANGE), one entry per user however many connections
// they have; `total` is the room's ZCARD (< 0: unknown, the listed count).
std::string presence_snapshot_json(std::string_view room, std::span<const std::string_view> members, long long total,
                                   std::string_view ref_json);

// Read receipts: one reader's position, {"userId":U,"user":N,"id":ID}, and
// {"type":"receipts","room":R,"reads":[...],"readers":N[,"truncated":true][,"ref":F]}
// from a snapshot (kReceiptsSnapshotScript: user ids and "<id>\t<name>" values).
std::string receipt_json(std::string_view user_id, std::string_view username, std::string_view id);
std::string receipts_head(std::string_view room);  // the event's text before its entries
std::string receipts_snapshot_json(std::string_view room, std::span<const std::string_view> user_ids,
                                   std::span<const std::string_view> values, long long total,
                                   std::string_view ref_json);

// {"type":"ack","ref":...,<extra>} where extra is pre-rendered `"k":v,...` or empty.
std::string ack_json(std::string_view ref_json, std::string_view extra);
// A JSON string literal (the kit's: invalid UTF-8 becomes U+FFFD).
inline std::string quoted(std::string_view s) { return plugin::json_string(s); }

}  // namespace aurora::chat
