#include "ws_deflate.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace aurora::host::ws {

namespace {

constexpr unsigned char kTail[4] = {0x00, 0x00, 0xFF, 0xFF};  // what Z_SYNC_FLUSH ends with (§7.2.1)
constexpr size_t kChunk = 16 * 1024;

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Splits at `sep` outside quoted strings.
std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    bool quoted = false;
    size_t from = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '"' && (i == 0 || s[i - 1] != '\\')) quoted = !quoted;
        else if (s[i] == sep && !quoted) {
            out.push_back(trim(s.substr(from, i - from)));
            from = i + 1;
        }
    }
    out.push_back(trim(s.substr(from)));
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

// A window-bits value: 8..15, digits only (a quoted "10" is the same, §7.1).
std::optional<int> window_bits(std::string_view v) {
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    if (v.size() == 1 && v[0] >= '8' && v[0] <= '9') return v[0] - '0';
    if (v.size() == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5') return 10 + (v[1] - '0');
    return std::nullopt;
}

struct Offer {
    bool server_no_context = false, client_no_context = false;
    bool client_bits_present = false;
    std::optional<int> server_bits, client_bits;
};

// One offer's parameters; nullopt if one is unknown, repeated or malformed.
std::optional<Offer> parse_offer(const std::vector<std::string_view> &params) {
    Offer o;
    bool seen[4] = {};
    for (size_t i = 1; i < params.size(); ++i) {
        std::string_view p = params[i], name = p, value;
        bool has_value = false;
        if (size_t eq = p.find('='); eq != std::string_view::npos) {
            name = trim(p.substr(0, eq));
            value = trim(p.substr(eq + 1));
            has_value = true;
        }
        int which;
        if (iequals(name, "server_no_context_takeover")) which = 0;
        else if (iequals(name, "client_no_context_takeover")) which = 1;
        else if (iequals(name, "server_max_window_bits")) which = 2;
        else if (iequals(name, "client_max_window_bits")) which = 3;
        else return std::nullopt;
        if (seen[which]) return std::nullopt;
        seen[which] = true;
        switch (which) {
        case 0:
        case 1:
            if (has_value) return std::nullopt;
            (which == 0 ? o.server_no_context : o.client_no_context) = true;
            break;
        case 2:
            if (!has_value || !(o.server_bits = window_bits(value))) return std::nullopt;
            break;
        default:
            o.client_bits_present = true;
            if (has_value && !(o.client_bits = window_bits(value))) return std::nullopt;
            break;
        }
    }
    return o;
}

}  // namespace

std::optional<DeflateParams> negotiate_deflate(std::string_view offers, const CompressionSettings &settings,
                                               std::string &response) {
    response.clear();
    if (!settings.enabled) return std::nullopt;
    for (std::string_view item : split(offers, ',')) {
        std::vector<std::string_view> params = split(item, ';');
        if (!iequals(params[0], "permessage-deflate")) continue;
        std::optional<Offer> o = parse_offer(params);
        if (!o) continue;
        DeflateParams d;
        // The client keeps its context only if both sides want it.
        d.client_context = settings.client_context_takeover && !o->client_no_context;
        response = "permessage-deflate; server_no_context_takeover";
        if (o->server_bits) {
            d.server_bits = std::max(*o->server_bits, 9);  // zlib's 9 never reaches past 256 bytes back
            response += "; server_max_window_bits=" + std::to_string(*o->server_bits);
        }
        if (!d.client_context) response += "; client_no_context_takeover";
        return d;
    }
    return std::nullopt;
}

Deflater::~Deflater() {
    for (auto &s : streams_) {
        if (s) deflateEnd(s.get());
    }
}

bool Deflater::compress(std::string_view in, int window_bits, std::vector<unsigned char> &out) {
    window_bits = std::clamp(window_bits, 9, 15);
    std::unique_ptr<z_stream> &zs = streams_[window_bits];
    if (!zs) {
        auto fresh = std::make_unique<z_stream>();
        std::memset(fresh.get(), 0, sizeof(z_stream));
        if (deflateInit2(fresh.get(), level_, Z_DEFLATED, -window_bits, mem_level_, Z_DEFAULT_STRATEGY) != Z_OK)
            return false;
        zs = std::move(fresh);
    } else if (deflateReset(zs.get()) != Z_OK) {
        return false;
    }
    out.resize(deflateBound(zs.get(), in.size()) + 8);
    zs->next_in = reinterpret_cast<Bytef *>(const_cast<char *>(in.data()));
    zs->avail_in = static_cast<uInt>(in.size());
    zs->next_out = out.data();
    zs->avail_out = static_cast<uInt>(out.size());
    int rc = deflate(zs.get(), Z_SYNC_FLUSH);
    if (rc != Z_OK || zs->avail_in != 0 || zs->avail_out == 0) return false;
    size_t n = out.size() - zs->avail_out;
    if (n >= 4 && std::memcmp(out.data() + n - 4, kTail, 4) == 0) n -= 4;
    out.resize(n);
    return true;
}

Inflater::Inflater() { ok_ = inflateInit2(&zs_, -15) == Z_OK; }

Inflater::~Inflater() {
    if (ok_) inflateEnd(&zs_);
}

Inflater::Result Inflater::inflate(std::string_view in, size_t max_keep, size_t max_total, bool keep_context,
                                   std::string &out) {
    out.clear();
    size_t &total = inflated_;
    total = 0;
    if (!ok_) return Result::Corrupt;
    if (!keep_context && inflateReset(&zs_) != Z_OK) return Result::Corrupt;
    unsigned char chunk[kChunk];
    // The message, then the tail the sender removed.
    std::string_view parts[2] = {in, std::string_view(reinterpret_cast<const char *>(kTail), 4)};
    for (std::string_view part : parts) {
        zs_.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(part.data()));
        zs_.avail_in = static_cast<uInt>(part.size());
        do {
            zs_.next_out = chunk;
            zs_.avail_out = sizeof chunk;
            int rc = ::inflate(&zs_, Z_SYNC_FLUSH);
            if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END) {
                out.clear();
                return Result::Corrupt;
            }
            size_t got = sizeof chunk - zs_.avail_out;
            total += got;
            if (total > max_total) {
                out.clear();
                return Result::Bomb;
            }
            if (total <= max_keep) {
                out.append(reinterpret_cast<const char *>(chunk), got);
            } else if (!out.empty()) {
                out.clear();
                out.shrink_to_fit();
            }
            if (rc == Z_STREAM_END) {
                // A final block (BFINAL) ends the stream: nothing may follow it
                // in this message but the tail; the next starts afresh.
                if (zs_.avail_in != 0 && part.data() == in.data()) {
                    out.clear();
                    return Result::Corrupt;
                }
                inflateReset(&zs_);
                break;
            }
            if (rc == Z_BUF_ERROR && zs_.avail_in == 0) break;  // all consumed, no more output
        } while (zs_.avail_in > 0 || zs_.avail_out == 0);
    }
    return total > max_keep ? Result::TooLarge : Result::Ok;
}

}  // namespace aurora::host::ws
