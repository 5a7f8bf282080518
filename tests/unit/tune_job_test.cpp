// TuneJob's data state: the (epoch, position) a checkpoint records, and the states a
// resumed run must refuse because they cannot come from this data set.
#include "experiments/runner/tune_job.h"

#include <gtest/gtest.h>

#include "nn/peft/peft.h"
#include "quiet_peft_log.h"
#include "test_util.h"
#include "tiny_t5.h"

namespace sp {
namespace {

TEST(TuneJob, DataStateRoundTripsAndRefusesStatesOutsideTheData) {
  QuietPeftLog quiet;
  T5ForConditionalGeneration model(tiny_t5_config());
  auto peft = make_peft("prompt_tuning", {{"length", 2}, {"init", "random_uniform"}});
  peft->attach(model);
  const std::vector<Seq2SeqExample> train = {
      {{5, 6, 1}, {7, 1}}, {{8, 1}, {9, 1}}, {{10, 11, 1}, {12, 1}}};
  TuneJob job(model, *peft, train, {.micro_batch_size = 2, .seed = 3}, nullptr, nullptr);
  job.micro_batch_loss(1, 0);  // two examples of epoch 0
  const nlohmann::json state = job.data_state();
  EXPECT_EQ(state, (nlohmann::json{{"epoch", 0}, {"position", 2}, {"seed", 3}, {"examples", 3}}));
  job.restore_data_state(state);
  EXPECT_EQ(job.data_state(), state);

  auto with = [&](const char* key, nlohmann::json value) {
    nlohmann::json s = state;
    s[key] = std::move(value);
    return s;
  };
  EXPECT_THROW_MSG(job.restore_data_state(with("position", 99999999999)),
                   "is outside the data set (3 examples)");
  EXPECT_THROW_MSG(job.restore_data_state(with("position", -1)), "is outside the data set");
  EXPECT_THROW_MSG(job.restore_data_state(with("epoch", -2)), "is outside the data set");
  EXPECT_THROW_MSG(job.restore_data_state(with("examples", 4)),
                   "is from another seed or data set (3, 3 examples)");
  job.restore_data_state(with("position", 3));  // the end of an epoch is a state a run saves
}

}  // namespace
}  // namespace sp
