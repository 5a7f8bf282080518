#pragma once
// A check of the precompiled normalisation rules inside a SentencePiece model before any
// text goes through them. libsentencepiece reads the rules (NormalizerSpec's
// precompiled_charsmap: a darts-clone double-array trie, then the replacement strings)
// without checking them, and a corrupt one crashes the first Encode. The check walks every
// trie node the library's prefix search can reach, as it would, and refuses a blob whose
// walk would read outside the trie or whose replacement would run past the strings.
//
//   check_precompiled_charsmaps(model_bytes, "spiece.model");   // throws sp::Error
#include <string>
#include <string_view>

namespace sp {

// Both rule sets of a serialized ModelProto (normalizer_spec and denormalizer_spec; merged
// as protobuf merges repeated fields). Throws "[tokenizer] '<name>': its <spec>'s
// precompiled_charsmap is corrupt: <why>". An empty charsmap (no rules) passes.
void check_precompiled_charsmaps(std::string_view model_proto, const std::string& name);

// What is wrong with one non-empty precompiled_charsmap blob; empty when nothing is.
std::string precompiled_charsmap_problem(std::string_view blob);

}  // namespace sp
