#include "message_document.h"

#include "attachment_rules.h"
#include "json.h"
#include "search_tokens.h"

namespace aurora::ingest {

std::optional<std::string> append_user_id(bson_t *doc, const std::string &user_id, bool any_user_id) {
    // With any_user_id only the canonical (lowercase) form is an ObjectId, so
    // that an id comes back from history exactly as it was sent.
    const bool oid_shaped =
        user_id.size() == 24 && bson_oid_is_valid(user_id.c_str(), user_id.size()) &&
        (!any_user_id || user_id.find_first_of("ABCDEF") == std::string::npos);
    if (any_user_id && user_id.starts_with("anon-"))
        return "userId \"" + user_id.substr(0, 64) + "\" is an anonymous sender's (never stored)";
    if (!oid_shaped && !any_user_id)
        return "userId \"" + user_id.substr(0, 64) + "\" is not an ObjectId (24 hex digits; user_ids: \"any\" stores "
               "it as a string)";
    if (!oid_shaped && (user_id.size() > 128 || !bson_utf8_validate(user_id.data(), user_id.size(), false)))
        return "userId is longer than 128 bytes or not UTF-8";
    if (oid_shaped) {
        bson_oid_t oid;
        bson_oid_init_from_string(&oid, user_id.c_str());
        BSON_APPEND_OID(doc, "userId", &oid);
    } else {
        bson_append_utf8(doc, "userId", 6, user_id.data(), static_cast<int>(user_id.size()));
    }
    return std::nullopt;
}

void append_tokens(bson_t *doc, std::string_view text) {
    bson_t arr;
    BSON_APPEND_ARRAY_BEGIN(doc, "tokens", &arr);
    std::vector<std::string> words = search_tokens(text);
    for (size_t i = 0; i < words.size(); ++i) {
        const std::string key = std::to_string(i);
        bson_append_utf8(&arr, key.c_str(), static_cast<int>(key.size()), words[i].data(), static_cast<int>(words[i].size()));
    }
    bson_append_array_end(doc, &arr);
}

std::optional<std::string> append_attachments(bson_t *doc, const std::string *field) {
    bson_t arr;
    BSON_APPEND_ARRAY_BEGIN(doc, "attachments", &arr);
    if (field && !field->empty()) {
        plugin::Json list = plugin::parse_json(*field);
        if (!cJSON_IsArray(list.get()) || cJSON_GetArraySize(list.get()) > static_cast<int>(plugin::kMaxAttachments))
            return "field attachments is not a JSON array of at most " + std::to_string(plugin::kMaxAttachments) +
                   " uploads";
        int i = 0;
        const cJSON *a = nullptr;
        cJSON_ArrayForEach(a, list.get()) {
            std::optional<plugin::Attachment> d = plugin::read_attachment(a);
            if (!d) return std::string("field attachments: an upload needs id (32 hex digits), fileType, filename and size");
            const std::string key = std::to_string(i++), url = std::string(plugin::kUploadsPath) + std::string(d->id);
            auto utf8 = [](bson_t *into, const char *k, std::string_view v) {
                bson_append_utf8(into, k, -1, v.data(), static_cast<int>(v.size()));
            };
            bson_t one;
            bson_append_document_begin(&arr, key.c_str(), static_cast<int>(key.size()), &one);
            utf8(&one, "id", d->id);
            utf8(&one, "url", url);  // the seed's fields: url, fileType
            utf8(&one, "fileType", d->type);
            BSON_APPEND_INT64(&one, "size", d->size);
            utf8(&one, "filename", d->filename);
            bson_append_document_end(&arr, &one);
        }
    }
    bson_append_array_end(doc, &arr);
    return std::nullopt;
}

std::optional<std::string> build_document(const StreamEntry &entry, bson_t *doc, bool any_user_id, bool search) {
    if (entry.sid.ms == 0 && entry.sid.seq == 0) return "the stream id is not <ms>-<seq>";
    const std::string *room = entry.field("roomId");
    const std::string *user_id = entry.field("userId");
    const std::string *username = entry.field("username");
    const std::string *text = entry.field("text");
    if (!room || room->empty()) return "field roomId is missing or empty";
    if (!user_id || user_id->empty()) return "field userId is missing or empty";
    if (!text) return "field text is missing";
    const int64_t ms = static_cast<int64_t>(entry.sid.ms);
    BSON_APPEND_UTF8(doc, "roomId", room->c_str());
    if (auto why = append_user_id(doc, *user_id, any_user_id)) return why;
    BSON_APPEND_UTF8(doc, "username", username && !username->empty() ? username->c_str() : user_id->c_str());
    bson_append_utf8(doc, "text", 4, text->data(), static_cast<int>(text->size()));
    BSON_APPEND_UTF8(doc, "status", "sent");
    if (auto why = append_attachments(doc, entry.field("attachments"))) return why;
    BSON_APPEND_DATE_TIME(doc, "createdAt", ms);
    BSON_APPEND_DATE_TIME(doc, "updatedAt", ms);
    BSON_APPEND_UTF8(doc, "streamId", entry.id.c_str());
    if (search) append_tokens(doc, *text);
    return std::nullopt;
}

}  // namespace aurora::ingest
