#include "experiments/data/pretraining.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "autograd/grad_mode.h"
#include "autograd/ops/nn.h"
#include "experiments/data/corpus_builder.h"
#include "experiments/data/example_stream.h"
#include "experiments/data/packing.h"
#include "experiments/data/sha256.h"
#include "experiments/data/shuffled_stream.h"
#include "experiments/data/tokenized_documents.h"
#include "experiments/data/unigram_baseline.h"
#include "experiments/objectives/span_corruption.h"
#include "experiments/training/optimizer_factory.h"
#include "experiments/training/seq2seq_loss.h"
#include "models/io/atomic_file.h"
#include "models/t5/checkpoint.h"
#include "tensor/error.h"

namespace sp {
namespace fs = std::filesystem;
namespace {

constexpr uint64_t kInitPurpose = 3;
constexpr uint64_t kDropoutPurpose = 4;
constexpr uint64_t kValidationSeed = 0;  // the same validation examples for every run

// targets_length: the one used (o.targets_length, or the objective's when that is 0).
nlohmann::json options_json(const PretrainOptions& o, int64_t targets_length) {
  nlohmann::json j = {
      {"objective", objective_name(o.objective)},
      {"data_dir", o.data_dir},
      {"init_checkpoint", o.init_checkpoint},
      {"preset", o.init_checkpoint.empty() && o.config_path.empty() ? o.preset : ""},
      {"config_path", o.config_path},
      {"dropout", o.dropout},
      {"steps", o.steps},
      {"batch_size", o.batch_size},
      {"grad_accumulation", o.grad_accumulation},
      {"inputs_length", o.inputs_length},
      {"targets_length", targets_length},
      {"noise_density", o.noise_density},
      {"mean_noise_span_length", o.mean_noise_span_length},
      {"shuffle_buffer", o.shuffle_buffer},
      {"z_loss", o.z_loss},
      {"seed", o.seed},
      {"device", o.device.str()},
      {"eval_examples", o.eval_examples}};
  j["optimizer"] = o.optimizer.canonical_json();
  return j;
}

// Rows of packed examples and the target tokens they hold (to weight batch means).
struct EvalBatch {
  Batch batch;
  int64_t target_tokens = 0;
};

class PretrainJob : public TrainingJob {
 public:
  PretrainJob(T5ForConditionalGeneration& model, ExampleStream& stream, PackingOptions packing,
              std::vector<EvalBatch> eval_batches, nlohmann::json eval_identity,
              Generator& dropout_gen, std::string spiece_model, double z_loss)
      : model_(model),
        stream_(stream),
        packing_(packing),
        eval_(std::move(eval_batches)),
        eval_identity_(std::move(eval_identity)),
        dropout_gen_(dropout_gen),
        spiece_model_(std::move(spiece_model)),
        z_loss_(z_loss) {}

  StepResult micro_batch_loss(int64_t, int64_t) override {
    return seq2seq_loss(model_, next_batch(), z_loss_);
  }

  std::optional<EvalResult> evaluate(int64_t) override {
    EvalResult r;
    r.metrics["loss"] = validation_loss(model_, eval_);
    return r;
  }

  NamedTensorList trainable() override { return model_.named_parameters(); }

  nlohmann::json evaluation_identity() override { return eval_identity_; }

  nlohmann::json data_state() override {
    nlohmann::json pending = nlohmann::json::array();
    for (const Seq2SeqExample& ex : pending_) pending.push_back({ex.inputs, ex.targets});
    return {{"stream", stream_.state()}, {"pending", pending}};
  }

  void restore_data_state(const nlohmann::json& state) override {
    stream_.set_state(state.at("stream"));
    pending_.clear();
    for (const nlohmann::json& p : state.at("pending"))
      pending_.push_back(
          {p.at(0).get<std::vector<int32_t>>(), p.at(1).get<std::vector<int32_t>>()});
  }

  void save_model(const std::string& dir) override {
    save_t5(model_, dir);
    write_file_atomic((fs::path(dir) / "spiece.model").string(),
                      read_file(spiece_model_, "[pretrain]"), "[pretrain]");
  }

  std::vector<std::pair<std::string, Generator*>> generators() override {
    return {{"dropout", &dropout_gen_}};
  }

  void set_training(bool training) override { model_.train(training); }

  // Mean cross-entropy per target token over the batches.
  static double validation_loss(const T5ForConditionalGeneration& model,
                                const std::vector<EvalBatch>& batches) {
    NoGradGuard no_grad;
    double sum = 0;
    int64_t tokens = 0;
    for (const EvalBatch& b : batches) {
      const T5Output out = model.forward(b.batch.inputs);
      sum += out.loss.item<double>() * static_cast<double>(b.target_tokens);
      tokens += b.target_tokens;
    }
    return tokens > 0 ? sum / static_cast<double>(tokens) : 0.0;
  }

 private:
  // Packs examples from the stream into exactly batch_size rows: more examples are drawn
  // until one no longer fits; the ones left over start the next batch.
  Batch next_batch() {
    size_t want = static_cast<size_t>(packing_.max_rows);
    for (;;) {
      while (pending_.size() < want) {
        std::optional<Seq2SeqExample> ex = stream_.next();
        SP_CHECK(ex.has_value(), "[pretrain] the training stream ended");
        pending_.push_back(std::move(*ex));
      }
      const PackResult r = pack_examples(pending_, packing_);
      if (r.consumed < static_cast<int64_t>(pending_.size())) {
        Batch b = make_packed_batch(r, packing_);
        pending_.erase(pending_.begin(), pending_.begin() + r.consumed);
        return b;
      }
      want = pending_.size() + static_cast<size_t>(packing_.max_rows);
    }
  }

  T5ForConditionalGeneration& model_;
  ExampleStream& stream_;
  PackingOptions packing_;
  std::vector<EvalBatch> eval_;
  nlohmann::json eval_identity_;
  Generator& dropout_gen_;
  std::string spiece_model_;
  double z_loss_;
  std::vector<Seq2SeqExample> pending_;
};

// A stream of o's objective over docs; shuffle: each epoch's document order drawn from seed.
std::unique_ptr<ExampleStream> objective_stream(const PretrainOptions& o,
                                                std::shared_ptr<const TokenizedDocuments> docs,
                                                const SpecialTokens& vocab, uint64_t seed,
                                                bool shuffle, int64_t max_epochs) {
  std::unique_ptr<ExampleStream> stream;
  if (o.objective == PretrainObjective::span_corruption) {
    SpanCorruptionStreamOptions s;
    s.seed = seed, s.shuffle = shuffle, s.max_epochs = max_epochs, s.vocab = vocab;
    s.inputs_length = o.inputs_length;
    s.noise_density = o.noise_density;
    s.mean_noise_span_length = o.mean_noise_span_length;
    stream = std::make_unique<SpanCorruptionStream>(std::move(docs), s);
  } else {
    PrefixLmStreamOptions p;
    p.seed = seed, p.shuffle = shuffle, p.max_epochs = max_epochs, p.vocab = vocab;
    p.prefix_lm.inputs_length = o.inputs_length;
    stream = std::make_unique<PrefixLmStream>(std::move(docs), p);
  }
  return stream;
}

// The training stream: shuffled epochs without end, then in blocks of shuffle_buffer.
std::unique_ptr<ExampleStream> training_stream(const PretrainOptions& o,
                                               std::shared_ptr<const TokenizedDocuments> docs,
                                               const SpecialTokens& vocab) {
  auto stream = objective_stream(o, std::move(docs), vocab, o.seed, true, 0);
  if (o.shuffle_buffer == 0) return stream;
  return std::make_unique<BlockShuffledStream>(std::move(stream), o.shuffle_buffer, o.seed);
}

// The validation examples packed into batches of batch_size rows.
std::vector<EvalBatch> eval_batches(const std::vector<Seq2SeqExample>& examples,
                                    PackingOptions packing, int64_t batch_size) {
  packing.max_rows = 0;
  const PackResult all = pack_examples(examples, packing);
  std::vector<EvalBatch> out;
  for (size_t start = 0; start < all.rows.size(); start += static_cast<size_t>(batch_size)) {
    PackResult part;
    const size_t end = std::min(all.rows.size(), start + static_cast<size_t>(batch_size));
    part.rows.assign(all.rows.begin() + static_cast<std::ptrdiff_t>(start),
                     all.rows.begin() + static_cast<std::ptrdiff_t>(end));
    EvalBatch b;
    for (const PackedRow& row : part.rows)
      b.target_tokens += static_cast<int64_t>(row.targets.size());
    b.batch = make_packed_batch(part, packing);
    out.push_back(std::move(b));
  }
  return out;
}

// The validation set's identity: its example count and a SHA-256 of their token ids.
nlohmann::json validation_identity(const std::vector<Seq2SeqExample>& examples) {
  Sha256 hash;
  for (const Seq2SeqExample& e : examples)
    for (const std::vector<int32_t>* ids : {&e.inputs, &e.targets}) {
      const uint64_t n = ids->size();
      hash.update(&n, sizeof(n));
      hash.update(ids->data(), ids->size() * sizeof(int32_t));
    }
  return {{"examples", examples.size()}, {"sha256", hash.finish_hex()}};
}

}  // namespace

const char* objective_name(PretrainObjective objective) {
  return objective == PretrainObjective::span_corruption ? "span_corruption" : "prefix_lm";
}

PretrainObjective objective_from_name(const std::string& name) {
  if (name == "span_corruption") return PretrainObjective::span_corruption;
  if (name == "prefix_lm") return PretrainObjective::prefix_lm;
  fail(str_cat("[pretrain] unknown objective \"", name,
               "\"; expected span_corruption or prefix_lm"));
}

nlohmann::json PretrainResult::to_json() const {
  nlohmann::json curve = nlohmann::json::array();
  for (const auto& [step, loss] : validation_loss)
    curve.push_back({{"step", step}, {"loss", loss}});
  return {{"model_dir", model_dir},
          {"steps_done", train.steps_done},
          {"earlier_seconds", train.earlier_seconds},
          {"stop_reason", train.stop_reason},
          {"final_train_loss", train.final_loss},
          {"unigram_baseline", unigram_baseline},
          {"initial_validation_loss", initial_loss},
          {"validation_loss", curve},
          {"tokens_per_second", tokens_per_second},
          {"parameters", parameters},
          {"vocab_size", vocab_size}};
}

std::vector<Seq2SeqExample> pretraining_validation_examples(
    const PretrainOptions& o, std::shared_ptr<const TokenizedDocuments> docs,
    const SpecialTokens& vocab) {
  return objective_stream(o, std::move(docs), vocab, kValidationSeed, true, 1)
      ->take(o.eval_examples);
}

PretrainResult run_pretraining(const PretrainOptions& o) {
  SP_CHECK(!o.out_dir.empty(), "[pretrain] no output directory given");
  SP_CHECK(o.steps > 0 && o.batch_size > 0 && o.grad_accumulation > 0,
           "[pretrain] steps, batch_size and grad_accumulation must be positive, got ", o.steps,
           ", ", o.batch_size, ", ", o.grad_accumulation);
  SP_CHECK(o.inputs_length >= 4, "[pretrain] inputs_length must be at least 4, got ",
           o.inputs_length);
  SP_CHECK(o.eval_examples > 0, "[pretrain] eval_examples must be positive");
  SP_CHECK(o.shuffle_buffer == 0 || (o.shuffle_buffer >= 2 && o.shuffle_buffer <= kMaxShuffleBlock),
           "[pretrain] shuffle_buffer must be 0 (no shuffling) or 2 to ", kMaxShuffleBlock,
           " examples, got ", o.shuffle_buffer);
  SP_CHECK(o.targets_length >= 0, "[pretrain] targets_length must be 0 (the objective's) or ",
           "positive, got ", o.targets_length);
  // Span corruption's targets follow from inputs_length; as T5's span_corruption, refuse a
  // shorter length (packing would cut every long target). Prefix LM may be given a shorter
  // one: its targets are cut to it, as in T5's prefix_lm.
  const bool spans = o.objective == PretrainObjective::span_corruption;
  const int64_t span_targets =
      spans ? span_corruption_lengths(o.inputs_length, o.noise_density, o.mean_noise_span_length)
                  .targets_length
            : 0;
  SP_CHECK(!spans || o.targets_length == 0 || o.targets_length >= span_targets,
           "[pretrain] targets_length ", o.targets_length, " is below the ", span_targets,
           " tokens span_corruption makes from inputs_length ", o.inputs_length, " (noise density ",
           o.noise_density, ", mean span ", o.mean_noise_span_length,
           "): targets would be cut; give 0 (the objective's length) or at least ", span_targets);
  const int64_t targets_length = o.targets_length > 0 ? o.targets_length
                                 : spans              ? span_targets
                                                      : o.inputs_length;
  const CorpusFiles corpus = corpus_files(o.data_dir);
  fs::create_directories(o.out_dir);
  auto log = [&](const std::string& line) {
    if (o.verbose)
      std::cerr << "[" << (o.init_checkpoint.empty() ? "pretrain" : "lm-adapt") << "] " << line
                << "\n";
  };

  // The tokenizer must be the model's: a continued checkpoint brings its own.
  std::string spiece = o.spiece_model;
  if (spiece.empty()) {
    const fs::path own = fs::path(o.init_checkpoint) / "spiece.model";
    spiece = !o.init_checkpoint.empty() && fs::exists(own) ? own.string() : corpus.spiece_model;
  }
  const TokenizedCorpus tokens =
      tokenize_corpus(spiece, corpus.train, corpus.validation,
                      o.cache_tokens ? (fs::path(o.data_dir) / "tokens").string() : "");
  for (const std::string& note : tokens.notes) log(note);
  const SpecialTokens& vocab = tokens.vocab;
  const auto& train_docs = tokens.train;
  const auto& val_docs = tokens.validation;

  // The model.
  Generator dropout_gen(derive_seed(o.seed, kDropoutPurpose));
  std::unique_ptr<T5ForConditionalGeneration> model;
  if (!o.init_checkpoint.empty()) {
    T5LoadOptions load;
    load.dropout_gen = &dropout_gen;
    load.dropout_rate = o.dropout;
    model = load_t5(o.init_checkpoint, load);
    SP_CHECK(model->config().vocab_size >= tokens.vocab_size, "[pretrain] ", o.init_checkpoint,
             " has ", model->config().vocab_size, " embedding rows but ", spiece, " needs ",
             tokens.vocab_size);
  } else {
    T5Config c =
        o.config_path.empty() ? T5Config::preset(o.preset) : T5Config::from_file(o.config_path);
    c.vocab_size = (tokens.vocab_size + 127) / 128 * 128;
    c.dropout_rate = o.dropout;
    c.validate(o.config_path.empty() ? o.preset : o.config_path);
    model = std::make_unique<T5ForConditionalGeneration>(c, DType::f32, &dropout_gen);
    Generator init_gen(derive_seed(o.seed, kInitPurpose));
    model->init_weights(&init_gen);
  }
  if (!o.device.is_cpu()) model->to(o.device);
  const T5Config& config = model->config();

  // Data.
  SP_CHECK(val_docs->size() > 0, "[pretrain] ", corpus.validation, " is empty: rebuild the corpus ",
           "with --validation-fraction above 0");
  log(str_cat("corpus ", o.data_dir, ": train ", train_docs->size(), " documents, ",
              train_docs->num_tokens(), " tokens; validation ", val_docs->size(), " documents, ",
              val_docs->num_tokens(), " tokens; vocabulary ", tokens.vocab_size));
  PackingOptions packing;
  packing.inputs_length = o.inputs_length;
  packing.targets_length = targets_length;
  packing.over_length = OverLength::truncate;
  packing.max_rows = o.batch_size;
  packing.pad_id = vocab.pad_id;

  const std::vector<Seq2SeqExample> val_examples =
      pretraining_validation_examples(o, val_docs, vocab);
  SP_CHECK(!val_examples.empty(), "[pretrain] the validation split yields no examples");
  std::vector<EvalBatch> eval = eval_batches(val_examples, packing, o.batch_size);

  PretrainResult result;
  result.parameters = model->num_parameters();
  result.vocab_size = config.vocab_size;
  log(str_cat(o.init_checkpoint.empty() ? "new model " : "continuing ",
              o.init_checkpoint.empty() ? (o.config_path.empty() ? o.preset : o.config_path)
                                        : o.init_checkpoint,
              ": d_model ", config.d_model, ", ", config.num_layers, "+", config.num_decoder_layers,
              " layers, ", result.parameters, " parameters; ", objective_name(o.objective),
              " inputs ", o.inputs_length, " targets ", targets_length, ", ", val_examples.size(),
              " validation examples"));

  // The baseline and the loss before training, once per output directory and validation
  // set (a file without the set's identity is from before it was recorded: kept).
  const std::string baseline_path = (fs::path(o.out_dir) / "baseline.json").string();
  const nlohmann::json validation = validation_identity(val_examples);
  nlohmann::json baseline;
  if (fs::exists(baseline_path))
    baseline = nlohmann::json::parse(read_file(baseline_path, "[pretrain]"));
  if (baseline.is_object() && baseline.value("validation", validation) == validation) {
    result.unigram_baseline = baseline.at("unigram_baseline").get<double>();
    result.initial_loss = baseline.at("initial_validation_loss").get<double>();
  } else {
    auto count_stream = objective_stream(o, train_docs, vocab, kValidationSeed, true, 1);
    const UnigramModel unigram =
        UnigramModel::fit(count_stream->take(o.baseline_examples), config.vocab_size);
    result.unigram_baseline = unigram.cross_entropy(val_examples);
    model->eval();
    result.initial_loss = PretrainJob::validation_loss(*model, eval);
    write_file_atomic(baseline_path,
                      nlohmann::json{{"unigram_baseline", result.unigram_baseline},
                                     {"unigram_tokens_counted", unigram.tokens_counted()},
                                     {"initial_validation_loss", result.initial_loss},
                                     {"validation_examples", val_examples.size()},
                                     {"validation", validation}}
                              .dump(2) +
                          "\n",
                      "[pretrain]");
  }
  log(str_cat("validation loss before training ", result.initial_loss,
              " nats/token; unigram baseline ", result.unigram_baseline));

  // Optimizer and trainer.
  auto stream = training_stream(o, train_docs, vocab);
  PretrainJob job(*model, *stream, packing, std::move(eval), validation, dropout_gen, spiece,
                  o.z_loss);
  const NamedTensorList params = job.trainable();
  std::unique_ptr<optim::Optimizer> opt = make_optimizer(o.optimizer, params, o.steps);

  TrainerOptions t;
  t.steps = o.steps;
  t.grad_accumulation = o.grad_accumulation;
  t.log_every = o.log_every;
  t.eval_every = o.eval_every;
  t.checkpoint_every = o.checkpoint_every > 0 ? o.checkpoint_every : o.eval_every;
  t.keep_best = false;  // pretraining exports its last parameters
  t.metric = "loss";
  t.higher_is_better = false;
  t.clip_global_norm = o.optimizer.clip_global_norm;
  t.max_seconds = o.max_seconds;
  t.out_dir = o.out_dir;
  t.progress = o.progress;
  t.seed = derive_seed(o.seed, kDropoutPurpose + 1);
  Trainer trainer(t, job, *opt);
  result.train = trainer.run();
  result.model_dir = result.train.model_dir;
  for (const EvalRecord& r : trainer.eval_history())
    result.validation_loss.emplace_back(r.step, r.result.metrics.at("loss"));

  // Tokens/s over the whole run (all processes that resumed it), from the train lines.
  double trained_tokens = 0, seconds = 0;
  std::ifstream metrics(trainer.metrics_path());
  for (std::string line; std::getline(metrics, line);) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("tokens") || !j.contains("tokens_per_s")) continue;
    const double n = j["tokens"].get<double>(), rate = j["tokens_per_s"].get<double>();
    if (rate > 0) trained_tokens += n, seconds += n / rate;
  }
  result.tokens_per_second = seconds > 0 ? trained_tokens / seconds : 0;

  nlohmann::json summary = result.to_json();
  summary["options"] = options_json(o, targets_length);
  write_file_atomic((fs::path(o.out_dir) / "pretrain.json").string(), summary.dump(2) + "\n",
                    "[pretrain]");
  return result;
}

}  // namespace sp
