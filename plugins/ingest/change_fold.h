// Changes to messages as documents, and the state they fold into
// (message_changes.h has the why and the writer). Pure: no MongoDB here.
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "stream_entry.h"

namespace aurora::ingest {

// An entry that is a change (it has `kind`).
inline bool is_change(const StreamEntry &e) { return e.field("kind") != nullptr; }

// The change document of an entry, or why it can never be stored.
std::optional<std::string> build_change_document(const StreamEntry &entry, bson_t *doc, bool any_user_id);

// A stream id as text that sorts like the id: 16 + 20 zero-padded digits.
std::string sortable_id(const StreamId &id);

// One change as read back for folding.
struct ChangeRecord {
    std::string key, kind, user_id, text, emoji, op;
    int64_t at_ms = 0;
};

// The state a message's changes make, in key order (sorts a copy).
struct MessageState {
    bool edited = false, deleted = false;
    std::string text, deleted_by, last_key;
    int64_t edited_ms = 0, deleted_ms = 0, updated_ms = 0;
    struct Reaction {
        std::string emoji;
        std::vector<std::string> users;
    };
    std::vector<Reaction> reactions;
};
MessageState fold_changes(std::vector<ChangeRecord> changes);

}  // namespace aurora::ingest
