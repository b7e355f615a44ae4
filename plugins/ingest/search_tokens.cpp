#include "search_tokens.h"

#include <algorithm>

namespace aurora::ingest {

namespace {

// A code point outside ASCII that separates words: punctuation, symbols,
// spaces, variation selectors, emoji.
bool separator(char32_t c) {
    return (c >= 0x80 && c <= 0xBF) || c == 0xD7 || c == 0xF7 || (c >= 0x2000 && c <= 0x206F) ||
           (c >= 0x2190 && c <= 0x2BFF) || (c >= 0x3000 && c <= 0x303F) || (c >= 0xFE00 && c <= 0xFE0F) ||
           (c >= 0xFF00 && c <= 0xFF0F) || (c >= 0x1F000 && c <= 0x1FAFF) || c == 0xFEFF || c >= 0xE0000;
}

// The code point at s[i] and its length (1 for a byte that does not start
// valid UTF-8: such bytes separate words).
char32_t decode(std::string_view s, size_t i, size_t &len) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (len == 1 || i + len > s.size()) {
        len = 1;
        return c < 0x80 ? c : 0xFFFD;
    }
    char32_t cp = len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; k < len; ++k) {
        const unsigned char b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0) != 0x80) {
            len = 1;
            return 0xFFFD;
        }
        cp = (cp << 6) | (b & 0x3F);
    }
    return cp;
}

}  // namespace

std::vector<std::string> search_tokens(std::string_view text, size_t max) {
    std::vector<std::string> out;
    std::string word;
    bool ascii_only = true;
    auto flush = [&] {
        const bool keep = !word.empty() && word.size() <= kMaxTokenBytes && (!ascii_only || word.size() >= 2);
        if (keep && out.size() < max && std::find(out.begin(), out.end(), word) == out.end()) out.push_back(word);
        word.clear();
        ascii_only = true;
    };
    for (size_t i = 0; i < text.size();) {
        size_t len = 1;
        const char32_t c = decode(text, i, len);
        if (c < 0x80) {
            const char ch = static_cast<char>(c);
            if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) word += ch;
            else if (ch >= 'A' && ch <= 'Z') word += static_cast<char>(ch - 'A' + 'a');
            else flush();
        } else if (c == 0xFFFD || separator(c)) {
            flush();
        } else {
            word.append(text.substr(i, len));
            ascii_only = false;
        }
        i += len;
        if (out.size() >= max) break;
    }
    flush();
    return out;
}

}  // namespace aurora::ingest
