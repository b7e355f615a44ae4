// One page of a room's history from MongoDB, newest first, in stream id
// order, with the cursor for the next page. Uses only the {roomId:1,
// createdAt:-1} index: createdAt is the stream id's milliseconds, and the
// messages that share a millisecond are read together and ordered by the id's
// sequence number, so pages never skip or repeat a message, even when one
// millisecond holds more messages than a page.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mongo_pool.h"
#include "stream_entry.h"

namespace aurora::ingest {

// A stored message in the shape of the chat plugin's live envelope.
struct HistoryMessage {
    StreamId sid;
    std::string id, room, user, user_id, text;
    // Its changes, folded (message_changes.h): the latest state.
    bool edited = false, deleted = false;
    int64_t edited_ms = 0;
    struct Reaction {
        std::string emoji;
        std::vector<std::string> user_ids;
    };
    std::vector<Reaction> reactions;
    struct Attachment {
        std::string id, url, type, filename;
        int64_t size = 0;
    };
    std::vector<Attachment> attachments;  // none once deleted
};

struct HistoryPage {
    std::vector<HistoryMessage> messages;  // newest first
    std::optional<std::string> next_before;  // set when the page is full
};

// Any thread. False with `error` when MongoDB failed.
// `extra`: more conditions every query of the page also has (search: the
// words, and not deleted).
bool read_history(plugin::MongoPool &pool, const std::string &collection, const std::string &room,
                  std::optional<StreamId> before, size_t limit, HistoryPage &page, std::string &error,
                  const bson_t *extra = nullptr);

// {"type":"message","id","room","user","userId","text","ts"} objects, as a
// JSON array, with "edited":true and "editedAt", "deleted":true (text ""),
// and "reactions":[{"emoji","count","userIds"}] when the message has them.
std::string messages_json(const std::vector<HistoryMessage> &messages);

// The room model (docs/rooms.md): may `user` read `room`? A room with no
// record in `rooms`, or a public one, is open to everyone; a private or
// direct room to its members (`room_members`). Two indexed lookups, per
// history request, never per message. nullopt with `error` if MongoDB failed.
std::optional<bool> may_read_room(plugin::MongoPool &pool, const std::string &room, const std::string &user,
                                  std::string &error);

}  // namespace aurora::ingest
