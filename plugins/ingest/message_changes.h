// Changes to stored messages (edit, delete, reaction: the chat plugin's
// kChangeScript adds them to the same stream, entries with a `kind` field).
//
// Each change is a document of its own in the changes collection (unique
// on the change's streamId, like a message: a redelivery is a duplicate,
// so each change is stored exactly once). The message document then
// carries the state all of its changes make, folded in stream id order
// from that collection. Folding everything again (not applying one change
// on top) makes the write the same whatever order workers run in and
// however often an entry is delivered; a write whose fold is older than
// the one stored (another worker folded a later change meanwhile) matches
// nothing, through the sortable `changeKey` and `changeCount`.
//
// A change whose message is not stored yet (another worker holds it, or a
// worker died holding it: its entry is claimed later) is stored, but left
// pending: it is delivered again, and folds once its message is there.
//
// The message document gains (the seed's fields are kept):
//   status     "sent" | "edited" | "deleted"
//   text       the last edit's; "" once deleted
//   editedAt, deletedAt (dates), deletedBy (the deleter's userId)
//   reactions  [{emoji, count, userIds}], in the order emojis were first added
//   changeKey  the last folded change's id, zero-padded to sort as text
//   changeCount how many changes that fold held (the same last change
//              with more changes before it is a newer fold)
//   updatedAt  the last change's time
#pragma once

#include <bson/bson.h>

#include <optional>
#include <string>
#include <vector>

#include "change_fold.h"
#include "message_writer.h"

namespace aurora::ingest {

class ChangeWriter {
public:
    // `search`: the fold keeps the message's `tokens` to its latest text.
    ChangeWriter(plugin::MongoPool &pool, std::string messages, std::string changes, bool search = false)
        : pool_(pool), messages_(std::move(messages)), changes_(std::move(changes)), inserter_(pool, changes_),
          search_(search) {}

    enum class Outcome { Applied, MessageMissing, Refused };
    struct Result {
        bool unavailable = false;
        std::string error;                  // why `unavailable`
        std::vector<Outcome> outcomes;      // one per document
        std::vector<std::string> errors;    // for Refused
    };
    // Stores the change documents (each with its entry's roomId and
    // targetId), then folds every message they change. Any thread.
    Result apply(const std::vector<const bson_t *> &docs) const;

private:
    // Folds one message's changes onto it. nullopt: MongoDB failed (error set).
    std::optional<bool> fold_onto(const std::string &room, const std::string &target, std::string &error) const;

    plugin::MongoPool &pool_;
    std::string messages_, changes_;
    MessageWriter inserter_;
    bool search_;
};

// With search: {roomId: 1, tokens: 1} on the messages.
bool create_search_index(plugin::MongoPool &pool, const std::string &collection, std::string &error);

// The changes collection's indexes: the unique key (as the messages') and
// {roomId: 1, targetId: 1} for folding.
bool create_change_indexes(plugin::MongoPool &pool, const std::string &collection, UniqueKey key,
                           std::string &error);

}  // namespace aurora::ingest
