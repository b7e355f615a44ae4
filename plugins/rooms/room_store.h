// Rooms and members: MongoDB is the record (collections `rooms` and
// `room_members`, the seed's naming style), Redis the cache every replica
// reads (docs/rooms.md, "Caching"):
//
//   <prefix>room:<R>     hash {type, archived, title, topic, owner}, or
//                        {type: none} for a room nobody created (public,
//                        as before the room model); EXPIREs after cache_ttl_s
//   <prefix>members:<R>  hash userId -> role, and "~" once it holds every
//                        member; EXPIREs after cache_ttl_s
//   <prefix>ver:<R>      bumped by every write of R
//
// A write goes to MongoDB first, then bumps ver:R and deletes both cache
// keys (one MULTI). A read that misses loads from MongoDB under WATCH
// ver:R, so a load that raced a write stores nothing (the write's result
// is read next time). The TTL bounds how long a cache whose invalidation
// failed (Redis down right after the MongoDB write) can be stale.
//
// THREADS: any, one RedisConnection per thread (the workers'); the
// MongoPool is shared.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mongo_pool.h"
#include "redis_connection.h"
#include "room_rules.h"

namespace aurora::rooms {

struct RoomInfo {
    std::string id;
    bool registered = false;  // false: nobody created it (public, no record)
    RoomType type = RoomType::Public;
    std::string title, topic, owner;
    bool archived = false;
    bool ready = false;  // direct rooms: both members were added once (RoomStore::direct)
    // Direct rooms: the two members' usernames when they were known at
    // dm_open (userId, username), for clients to show who the room is with.
    std::vector<std::pair<std::string, std::string>> names;
};

struct Membership {
    RoomInfo room;
    Role role = Role::None;
    int64_t joined_ms = 0;
    // Activity (RoomStore::activity): the newest stored message, and how
    // many messages of others came after the member's read marker.
    std::string last_id, last_text, last_user;
    int64_t last_ms = 0;
    int64_t unread = 0;  // at most kUnreadMax
};

constexpr int64_t kUnreadMax = 100;  // counted up to here ("99+" in a client)

class RoomStore {
public:
    RoomStore(plugin::MongoPool &pool, std::string prefix, int cache_ttl_s, std::string users_collection)
        : pool_(pool), prefix_(std::move(prefix)), ttl_(std::to_string(cache_ttl_s)),
          users_(std::move(users_collection)) {}

    bool ensure_indexes(std::string &error);

    // Cached reads. nullopt with `error` when Redis or MongoDB failed.
    std::optional<RoomInfo> room(plugin::RedisConnection &r, const std::string &id, std::string &error);
    std::optional<Role> role(plugin::RedisConnection &r, const std::string &room, const std::string &user,
                             std::string &error);

    // A write: stored in MongoDB and the cache invalidated (Ok); stored but
    // the cache not invalidated (Uncached: the caller still announces it,
    // and asks for a retry, which invalidates again); not stored (Failed).
    enum class Write { Ok, Uncached, Failed };
    enum class Created { Ok, Exists, Failed };
    // A new public or private room owned by `owner`; Exists if the id is
    // taken (by another user: the same owner's retry completes it).
    Created create(plugin::RedisConnection &r, const RoomInfo &room, int64_t now_ms, std::string &error);
    // The direct room of two users, made if missing (idempotent, any order).
    // `a_name`, `b_name`: their usernames, stored when not empty. `a` opens
    // it: a new room gets both members; an existing one gets `a` back (who
    // may have left), never `b` (who may have left too: only b brings b
    // back). `created`: the room is new.
    std::optional<RoomInfo> direct(plugin::RedisConnection &r, const std::string &a, const std::string &a_name,
                                   const std::string &b, const std::string &b_name, int64_t now_ms, bool &created,
                                   std::string &error);
    Write set_member(plugin::RedisConnection &r, const std::string &room, const std::string &user, Role role,
                     const std::string &by, int64_t now_ms, std::string &error);
    Write remove_member(plugin::RedisConnection &r, const std::string &room, const std::string &user,
                        std::string &error);
    // title/topic/archived as given (nullopt: unchanged).
    Write update(plugin::RedisConnection &r, const std::string &room, const std::optional<std::string> &title,
                const std::optional<std::string> &topic, std::optional<bool> archived, int64_t now_ms,
                std::string &error);
    // The rooms `user` is a member of (at most `limit`), newest membership first.
    std::optional<std::vector<Membership>> rooms_of(const std::string &user, size_t limit, std::string &error);
    // Fills each membership's activity from the stored messages (ingest's
    // `messages_collection`) and the member's read markers (chat's
    // chat:read:<userId>, room -> id), then sorts by activity, newest
    // first. Two indexed queries per room: a list request, never a message.
    bool activity(plugin::RedisConnection &r, const std::string &user, const std::string &messages_collection,
                  std::vector<Membership> &rooms, std::string &error);
    // A registered user (auth's `users` collection): its id (ObjectId hex)
    // for a username; nullopt and empty error when there is none.
    std::optional<std::string> user_id(const std::string &username, std::string &error);
    // Is there a user with this id (an ObjectId's hex, or the id as a
    // string) in `users`? nullopt with `error` when MongoDB failed.
    std::optional<bool> user_exists(const std::string &id, std::string &error);

    // Counts one room creation by `user` in this hour; false past `max`.
    std::optional<bool> count_creation(plugin::RedisConnection &r, const std::string &user, int64_t max,
                                       std::string &error);
    // Every replica hears it (rooms_plugin.cpp subscribes).
    bool publish(plugin::RedisConnection &r, const std::string &event_json, std::string &error);
    std::string events_channel() const { return prefix_ + "events"; }

private:
    Write invalidate(plugin::RedisConnection &r, const std::string &room, std::string &error);
    plugin::MongoPool::Client acquire(std::string &error);  // empty with `error` when the pool gave none
    plugin::Collection collection(plugin::MongoPool::Client &client, const std::string &name);
    void ensure_indexes_once();  // before a write: until it worked once (MongoDB may start after us)
    std::optional<RoomInfo> load_room(const std::string &id, std::string &error);

    plugin::MongoPool &pool_;
    std::string prefix_, ttl_, users_;
    std::atomic<bool> indexed_{false};
};

}  // namespace aurora::rooms
