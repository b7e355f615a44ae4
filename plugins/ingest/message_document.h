// One stream entry -> one `messages` document with the seed's schema (§6.3):
// roomId, userId (ObjectId), username, text, status "sent", attachments
// (the uploads the message names: [{id, url, fileType, size, filename}],
// the seed's url and fileType with the seed's planned size and filename),
// createdAt = updatedAt = the stream id's milliseconds, plus streamId (the
// unique key that makes a retried insert a no-op). The document depends only
// on the entry, so every retry writes the same thing.
#pragma once

#include <bson/bson.h>

#include <optional>
#include <string>

#include "stream_entry.h"

namespace aurora::ingest {

// Fills `doc` (initialised by the caller) and returns nullopt, or returns
// why the entry can never be stored (a "poison" entry): a field missing or
// empty, or a userId that is not a 24-hex ObjectId (anonymous senders).
// `any_user_id`: a userId that is not an ObjectId (an identity provider's
// `sub`) is stored as a string instead of refusing the entry.
// Appends "userId": an ObjectId, or (any_user_id) a string; or says why
// the id can never be stored.
std::optional<std::string> append_user_id(bson_t *doc, const std::string &user_id, bool any_user_id);

// `search`: also "tokens", the text's words (search_tokens.h).
std::optional<std::string> build_document(const StreamEntry &entry, bson_t *doc, bool any_user_id = false,
                                          bool search = false);

// Appends "attachments" from the entry's field (a JSON array, written by
// the chat plugin; absent: []), or says why it can never be stored.
std::optional<std::string> append_attachments(bson_t *doc, const std::string *field);

// Appends "tokens": the words of `text`.
void append_tokens(bson_t *doc, std::string_view text);

}  // namespace aurora::ingest
