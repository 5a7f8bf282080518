#include "tensor/suggest.h"

#include <gtest/gtest.h>

namespace sp {
namespace {

TEST(Suggest, EditDistanceCountsEditsAndNeighbourSwaps) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("abc", ""), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("lenght", "length"), 1u);  // one swap
  EXPECT_EQ(edit_distance("Length", "length"), 0u);  // case-insensitive
  EXPECT_EQ(edit_distance("steps", "step"), 1u);
}

TEST(Suggest, SuggestsOnlyCloseNames) {
  const std::vector<std::string> keys = {"length", "init", "position", "vocab_size"};
  EXPECT_EQ(did_you_mean("lenght", keys), "; did you mean 'length'?");
  EXPECT_EQ(did_you_mean("postion", keys), "; did you mean 'position'?");
  EXPECT_EQ(did_you_mean("inti", keys), "; did you mean 'init'?");
  EXPECT_EQ(did_you_mean("learning_rate", keys), "");
  EXPECT_EQ(closest_match("xyz", keys), "");
  EXPECT_EQ(closest_match("vocab-size", keys), "vocab_size");
}

}  // namespace
}  // namespace sp
