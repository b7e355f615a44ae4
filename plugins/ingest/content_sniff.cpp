#include "content_sniff.h"

#include <array>
#include <cctype>
#include <cstdint>

#include "json.h"

namespace aurora::ingest {

namespace {

constexpr std::array<std::string_view, 6> kTypes = {"image/png", "image/jpeg", "image/gif", "image/webp",
                                                    "application/pdf", "text/plain"};

bool starts(std::string_view data, std::string_view magic) { return data.substr(0, magic.size()) == magic; }

// Valid UTF-8 without control characters other than tab, line feed, form
// feed and carriage return (C1 controls, U+0080-U+009F, included): what a
// person would call a text file.
bool plain_text(std::string_view s) {
    if (!plugin::valid_utf8(s)) return false;
    for (size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\f' && c != '\r') || c == 0x7f) return false;
        if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) < 0xa0) return false;
    }
    return true;
}

// Markup, more strictly than a browser sniffs it (the WHATWG standard
// wants one of its HTML tags): after white space and a BOM, a '<' that
// opens anything a parser could take for a tag, a comment, a declaration
// or a processing instruction: a letter, '!', '?' or '/'.
bool looks_like_markup(std::string_view s) {
    size_t i = s.starts_with("\xEF\xBB\xBF") ? 3 : 0;  // a BOM
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f')) ++i;
    if (i + 1 >= s.size() || s[i] != '<') return false;
    const auto c = static_cast<unsigned char>(s[i + 1]);
    return std::isalpha(c) || c == '!' || c == '?' || c == '/';
}

}  // namespace

std::span<const std::string_view> sniffable_types() { return kTypes; }

std::string_view sniff_type(std::string_view d) {
    if (starts(d, "\x89PNG\r\n\x1a\n")) return "image/png";
    if (starts(d, "\xFF\xD8\xFF")) return "image/jpeg";
    if (starts(d, "GIF87a") || starts(d, "GIF89a")) return "image/gif";
    if (d.size() >= 16 && starts(d, "RIFF") && d.substr(8, 4) == "WEBP") return "image/webp";
    if (starts(d, "%PDF-")) return "application/pdf";
    if (!d.empty() && plain_text(d)) return looks_like_markup(d) ? "text/html" : "text/plain";
    return "";
}

std::string upload_filename(std::string_view given, std::string &error) {
    const size_t slash = given.find_last_of("/\\");
    if (slash != std::string_view::npos) given.remove_prefix(slash + 1);
    if (given.empty() || given == "." || given == "..") {
        error = "'name' must be a file name (1-255 bytes, no control characters)";
        return {};
    }
    if (given.size() > 255) {
        error = "'name' is longer than 255 bytes";
        return {};
    }
    if (!plain_text(given) || given.find_first_of("\t\n\f\r") != std::string_view::npos) {
        error = "'name' must be UTF-8 without control characters";
        return {};
    }
    return std::string(given);
}

std::string content_disposition(std::string_view type, std::string_view filename) {
    std::string ascii, encoded;
    for (unsigned char c : filename) {
        const bool safe = std::isalnum(c) || c == '.' || c == '-' || c == '_' || c == ' ' || c == '(' || c == ')';
        ascii += c < 0x80 && safe ? static_cast<char>(c) : '_';
        if (std::isalnum(c) || c == '.' || c == '-' || c == '_' || c == '~') {
            encoded += static_cast<char>(c);
        } else {
            static constexpr char kHex[] = "0123456789ABCDEF";
            encoded += '%';
            encoded += kHex[c >> 4];
            encoded += kHex[c & 15];
        }
    }
    const bool image = type.starts_with("image/");
    return std::string(image ? "inline" : "attachment") + "; filename=\"" + ascii + "\"; filename*=UTF-8''" + encoded;
}

}  // namespace aurora::ingest
