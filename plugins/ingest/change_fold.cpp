#include "change_fold.h"

#include <algorithm>
#include <cstdio>

#include "message_document.h"

namespace aurora::ingest {

std::string sortable_id(const StreamId &id) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%016llu-%020llu", static_cast<unsigned long long>(id.ms),
                  static_cast<unsigned long long>(id.seq));
    return buf;
}

std::optional<std::string> build_change_document(const StreamEntry &entry, bson_t *doc, bool any_user_id) {
    if (entry.sid.ms == 0 && entry.sid.seq == 0) return "the stream id is not <ms>-<seq>";
    const std::string *kind = entry.field("kind");
    const std::string *room = entry.field("roomId");
    const std::string *user_id = entry.field("userId");
    const std::string *username = entry.field("username");
    const std::string *target = entry.field("target");
    if (!kind || (*kind != "edit" && *kind != "delete" && *kind != "reaction"))
        return "field kind is not edit, delete or reaction";
    if (!room || room->empty()) return "field roomId is missing or empty";
    if (!user_id || user_id->empty()) return "field userId is missing or empty";
    if (!target || !StreamId::parse(*target)) return "field target is not a message id";
    const std::string *text = entry.field("text");
    const std::string *emoji = entry.field("emoji");
    const std::string *op = entry.field("op");
    if (*kind == "edit" && !text) return "an edit without text";
    if (*kind == "reaction" && (!emoji || emoji->empty() || !op || (*op != "add" && *op != "remove")))
        return "a reaction without emoji, or with an op that is not add or remove";
    BSON_APPEND_UTF8(doc, "roomId", room->c_str());
    BSON_APPEND_UTF8(doc, "streamId", entry.id.c_str());
    BSON_APPEND_UTF8(doc, "targetId", target->c_str());
    BSON_APPEND_UTF8(doc, "key", sortable_id(entry.sid).c_str());
    BSON_APPEND_UTF8(doc, "kind", kind->c_str());
    if (auto why = append_user_id(doc, *user_id, any_user_id)) return why;
    BSON_APPEND_UTF8(doc, "username", username && !username->empty() ? username->c_str() : user_id->c_str());
    if (*kind == "edit") bson_append_utf8(doc, "text", 4, text->data(), static_cast<int>(text->size()));
    if (*kind == "reaction") {
        bson_append_utf8(doc, "emoji", 5, emoji->data(), static_cast<int>(emoji->size()));
        BSON_APPEND_UTF8(doc, "op", op->c_str());
    }
    BSON_APPEND_DATE_TIME(doc, "createdAt", static_cast<int64_t>(entry.sid.ms));
    // The message's time: retention removes a message's changes with it.
    BSON_APPEND_DATE_TIME(doc, "targetAt", static_cast<int64_t>(StreamId::parse(*target)->ms));
    return std::nullopt;
}

MessageState fold_changes(std::vector<ChangeRecord> changes) {
    std::sort(changes.begin(), changes.end(), [](const ChangeRecord &a, const ChangeRecord &b) { return a.key < b.key; });
    MessageState st;
    for (const ChangeRecord &c : changes) {
        st.last_key = c.key;
        st.updated_ms = c.at_ms;
        if (st.deleted) continue;  // a tombstone: nothing after it counts
        if (c.kind == "edit") {
            st.edited = true;
            st.text = c.text;
            st.edited_ms = c.at_ms;
        } else if (c.kind == "delete") {
            st.deleted = true;
            st.text.clear();
            st.deleted_by = c.user_id;
            st.deleted_ms = c.at_ms;
            st.reactions.clear();
        } else if (c.kind == "reaction") {
            auto r = std::find_if(st.reactions.begin(), st.reactions.end(),
                                  [&](const MessageState::Reaction &x) { return x.emoji == c.emoji; });
            if (c.op == "add") {
                if (r == st.reactions.end()) r = st.reactions.insert(st.reactions.end(), {c.emoji, {}});
                if (std::find(r->users.begin(), r->users.end(), c.user_id) == r->users.end()) r->users.push_back(c.user_id);
            } else if (r != st.reactions.end()) {
                std::erase(r->users, c.user_id);
                if (r->users.empty()) st.reactions.erase(r);
            }
        }
    }
    return st;
}

}  // namespace aurora::ingest
