#pragma once
// What a pretraining objective makes of a piece of text: encoder and decoder token ids.
#include <cstdint>
#include <vector>

namespace sp {

struct Seq2SeqExample {
  std::vector<int32_t> inputs;   // encoder ids, EOS-terminated
  std::vector<int32_t> targets;  // decoder labels, EOS-terminated
  bool operator==(const Seq2SeqExample&) const = default;
};

}  // namespace sp
