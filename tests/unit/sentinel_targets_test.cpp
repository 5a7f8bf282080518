// The "span corruption + sentinel" variant: <extra_id_0> before downstream targets.
#include "experiments/objectives/sentinel_targets.h"

#include <gtest/gtest.h>

#include <vector>

#include "test_util.h"

namespace sp {
namespace {

TEST(SpecialTokens, t5_sentinel_ids) {
  const SpecialTokens vocab = t5_special_tokens();
  EXPECT_EQ(vocab.sentinel(0), 32099);
  EXPECT_EQ(vocab.sentinel(1), 32098);
  EXPECT_EQ(vocab.sentinel(99), 32000);
  EXPECT_EQ(vocab.eos_id, 1);
  EXPECT_EQ(vocab.pad_id, 0);
  EXPECT_TRUE(vocab.is_sentinel(32000));
  EXPECT_TRUE(vocab.is_sentinel(32099));
  EXPECT_FALSE(vocab.is_sentinel(31999));
  EXPECT_FALSE(vocab.is_sentinel(32100));
  EXPECT_EQ(vocab.sentinel_index(32099), 0);
  EXPECT_EQ(vocab.sentinel_index(32000), 99);
  EXPECT_THROW_MSG(vocab.sentinel(100),
                   "[sentinel] <extra_id_100> does not exist: the vocabulary has 100 sentinels");
  EXPECT_THROW_MSG(vocab.sentinel(-1), "<extra_id_-1> does not exist");
  EXPECT_THROW_MSG(vocab.sentinel_index(5),
                   "[sentinel] id 5 is not a sentinel: sentinels are 32000..32099");
}

TEST(SentinelTargets, adds_extra_id_0_in_front) {
  const std::vector<int32_t> targets = {4273, 1};  // "positive" + EOS
  EXPECT_EQ(add_sentinel_to_beginning(targets), (std::vector<int32_t>{32099, 4273, 1}));
  EXPECT_EQ(add_sentinel_to_beginning(targets, {}, 2), (std::vector<int32_t>{32097, 4273, 1}));
  EXPECT_EQ(add_sentinel_to_beginning(std::vector<int32_t>{}), (std::vector<int32_t>{32099}));
  SpecialTokens small;
  small.spm_size = 100;
  small.num_sentinels = 10;
  EXPECT_EQ(add_sentinel_to_beginning(targets, small), (std::vector<int32_t>{109, 4273, 1}));
  EXPECT_THROW_MSG(add_sentinel_to_beginning(targets, small, 10), "<extra_id_10> does not exist");
}

TEST(SentinelTargets, strips_one_leading_sentinel_from_predictions) {
  EXPECT_EQ(strip_leading_sentinel(std::vector<int32_t>{32099, 4273, 1}),
            (std::vector<int32_t>{4273, 1}));
  EXPECT_EQ(strip_leading_sentinel(std::vector<int32_t>{32099, 32099, 5}),
            (std::vector<int32_t>{32099, 5}));
  // Not in front, another sentinel, or nothing at all: unchanged.
  EXPECT_EQ(strip_leading_sentinel(std::vector<int32_t>{4273, 32099}),
            (std::vector<int32_t>{4273, 32099}));
  EXPECT_EQ(strip_leading_sentinel(std::vector<int32_t>{32098, 7}),
            (std::vector<int32_t>{32098, 7}));
  EXPECT_TRUE(strip_leading_sentinel(std::vector<int32_t>{}).empty());
  EXPECT_TRUE(strip_leading_sentinel(std::vector<int32_t>{32099}).empty());
  EXPECT_EQ(strip_leading_sentinel(std::vector<int32_t>{32098, 7}, {}, 1),
            (std::vector<int32_t>{7}));
  const std::vector<int32_t> targets = {12, 13, 1};
  EXPECT_EQ(strip_leading_sentinel(add_sentinel_to_beginning(targets)), targets);
}

TEST(SentinelTargets, removes_extra_id_0_from_text) {
  EXPECT_EQ(remove_extra_id_0("<extra_id_0> positive"), "positive");
  EXPECT_EQ(remove_extra_id_0("<extra_id_0>positive"), "positive");
  EXPECT_EQ(remove_extra_id_0("  \tpositive "), "positive ");
  EXPECT_EQ(remove_extra_id_0("positive <extra_id_0>"), "positive <extra_id_0>");
  EXPECT_EQ(remove_extra_id_0("<extra_id_1> x"), "<extra_id_1> x");
  EXPECT_EQ(remove_extra_id_0("<extra_id_0><extra_id_0> x"), "<extra_id_0> x");
  EXPECT_EQ(remove_extra_id_0("<extra_id_0>"), "");
  EXPECT_EQ(remove_extra_id_0(""), "");
}

// Python's str.lstrip() strips Unicode whitespace too (str.isspace): NO-BREAK SPACE,
// IDEOGRAPHIC SPACE, NEL, ...; other non-ASCII text stays.
TEST(SentinelTargets, remove_extra_id_0_strips_unicode_whitespace_like_python) {
  EXPECT_EQ(remove_extra_id_0("<extra_id_0>\u00a0positive"), "positive");
  EXPECT_EQ(remove_extra_id_0("<extra_id_0> \u3000\u2003yes"), "yes");
  EXPECT_EQ(remove_extra_id_0("\xc2\x85\u00a0no"), "no");  // NEL, NBSP
  EXPECT_EQ(remove_extra_id_0("<extra_id_0>\u00e9t\u00e9"), "\u00e9t\u00e9");
  EXPECT_EQ(remove_extra_id_0("<extra_id_0>\xff x"), "\xff x");  // not UTF-8: kept
}

}  // namespace
}  // namespace sp
