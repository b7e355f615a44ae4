// The words search matches (docs/ingest.md, "Search"): FerretDB has no
// $text index, so ingest stores each message's words in its document
// (`tokens`, a multikey index with `roomId`) and a search asks for
// documents holding every word of the query ($all). Exact words, not
// stems or prefixes; ASCII letters are folded to lower case, other
// scripts are matched as written. No regex anywhere: a query is only ever
// a list of words, whatever characters it holds.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace aurora::ingest {

inline constexpr size_t kMaxTokenBytes = 64;     // longer words are not indexed
inline constexpr size_t kMaxMessageTokens = 128; // distinct words indexed per message
inline constexpr size_t kMaxQueryWords = 8;

// The distinct words of `text` (valid UTF-8), in order of first use, at
// most `max`: runs of letters and digits (ASCII lower-cased; any code point
// that is not punctuation, a symbol or an emoji counts as a letter), two
// bytes or more for pure ASCII words.
std::vector<std::string> search_tokens(std::string_view text, size_t max = kMaxMessageTokens);

}  // namespace aurora::ingest
