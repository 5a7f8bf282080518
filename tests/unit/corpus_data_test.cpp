// Readers, SHA-256, WordNet parsing and the built-in corpus (experiments/data/).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "experiments/data/corpus_builder.h"
#include "experiments/data/document_reader.h"
#include "experiments/data/sha256.h"
#include "experiments/data/tokenized_documents.h"
#include "experiments/data/wordnet.h"
#include "models/tokenizer/t5_tokenizer.h"
#include "temp_dir.h"
#include "test_util.h"

namespace sp {
namespace {
namespace fs = std::filesystem;

std::vector<std::string> lines_of(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(Sha256, known_vectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // Lengths around the 56- and 64-byte padding edges (reference: Python's hashlib), fed in
  // uneven chunks to exercise the buffering.
  const std::vector<std::pair<size_t, std::string>> expected = {
      {55, "e7313d333c272e639f790978283f9eb392e843d0f29b7016828bb1daa4aac70b"},
      {56, "4324d65f3c103567f5589c710bc08f8523f929a9272e3af36fc968e52abc6c27"},
      {63, "81c80242132f230c3bd41b3e63bbcff16107339549214a99614ff26664625055"},
      {64, "39e3d7b6b5d075d37d053ad89b24b41bef4f3c29760c84447cab3f3be1882241"},
      {65, "aacca6ff74fdbb296d165a45cecfa04e5127bc008770fbbdd48006f2d2fae95e"},
      {119, "9ce7368e4daf32341631b492e80359dc9f594b48453cd0dd5bf0b19279cc177e"},
      {120, "7836b787757e95e58b3ca5aec90b1b004e8deba1e50e9675af9cabf1a13a04b5"},
      {1000, "1e9bc38cbf860b9ec31918b065f9b52476c549a782e0e7990bed8ce3868d2371"}};
  for (const auto& [n, hex] : expected) {
    std::string data(n, '\0');
    for (size_t i = 0; i < n; ++i) data[i] = static_cast<char>((i * 7 + 3) % 256);
    EXPECT_EQ(sha256_hex(data), hex) << n << " bytes";
    Sha256 h;
    for (size_t pos = 0, chunk = 1; pos < n; pos += chunk, chunk = chunk * 3 % 70 + 1)
      h.update(std::string_view(data).substr(pos, chunk));
    EXPECT_EQ(h.finish_hex(), hex) << n << " bytes in chunks";
  }
}

TEST(DocumentReader, lines_paragraphs_and_whitespace) {
  TempDir dir;
  const std::string path = dir.write("a.txt", "first doc\r\n\n  \nsecond\nthird line\n\nlast");
  EXPECT_EQ(read_documents(path),
            (std::vector<std::string>{"first doc", "second", "third line", "last"}));
  EXPECT_EQ(read_documents(path, {.format = DocumentFormat::paragraphs}),
            (std::vector<std::string>{"first doc", "second\nthird line", "last"}));
  EXPECT_EQ(normalize_whitespace("  a\t\tb \n c\u00a0\u2003d  "), "a b c d");
  EXPECT_EQ(normalize_whitespace(" \t "), "");
  EXPECT_EQ(parse_document_format("jsonl"), DocumentFormat::jsonl);
  EXPECT_THROW_MSG(parse_document_format("csv"), "expected lines, paragraphs or jsonl");
  EXPECT_THROW_MSG(DocumentReader("/nonexistent/x.txt"), "cannot open /nonexistent/x.txt");
}

TEST(DocumentReader, jsonl_field_and_errors) {
  TempDir dir;
  const std::string path =
      dir.write("a.jsonl", "{\"text\": \"one\", \"id\": 1}\n\n{\"text\": \"two\"}\n");
  EXPECT_EQ(read_documents(path, {.format = DocumentFormat::jsonl}),
            (std::vector<std::string>{"one", "two"}));
  const std::string bad = dir.write("b.jsonl", "{\"text\": \"one\"}\n{\"body\": \"two\"}\n");
  EXPECT_THROW_MSG(read_documents(bad, {.format = DocumentFormat::jsonl}),
                   "b.jsonl:2: field \"text\" is missing");
  const std::string num = dir.write("c.jsonl", "{\"text\": 3}\n");
  EXPECT_THROW_MSG(read_documents(num, {.format = DocumentFormat::jsonl}),
                   "c.jsonl:1: field \"text\" must be a string");
  const std::string broken = dir.write("d.jsonl", "\n{\"text\": \n");
  EXPECT_THROW_MSG(read_documents(broken, {.format = DocumentFormat::jsonl}),
                   "d.jsonl:2: not valid JSON");
  EXPECT_EQ(read_documents(dir.write("e.jsonl", "{\"body\": \"x\"}"),
                           {.format = DocumentFormat::jsonl, .jsonl_field = "body"}),
            (std::vector<std::string>{"x"}));
}

// Text that is not UTF-8 (a Latin-1 file, a stray byte) fails naming the file and line,
// in every format, instead of reaching the tokenizer and the vocabulary as is.
TEST(DocumentReader, non_utf8_bytes_name_the_file_and_line) {
  TempDir dir;
  const std::string latin1 = dir.write("latin1.txt", "fine\r\ncaf\xe9 au lait\n");
  for (DocumentFormat format : {DocumentFormat::lines, DocumentFormat::paragraphs})
    EXPECT_THROW_MSG(read_documents(latin1, {.format = format}),
                     "latin1.txt:2: not valid UTF-8 (byte 0xE9 at column 4)");
  const std::string blank = dir.write("blank.txt", "a\n\xff\n");
  EXPECT_THROW_MSG(read_documents(blank), "blank.txt:2: not valid UTF-8 (byte 0xFF at column 1)");
  const std::string jsonl = dir.write("x.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"\xc3(\"}\n");
  EXPECT_THROW_MSG(read_documents(jsonl, {.format = DocumentFormat::jsonl}),
                   "x.jsonl:2: not valid UTF-8 (byte 0xC3 at column 11)");
  // Well-formed multi-byte text and a CRLF line end are fine.
  EXPECT_EQ(read_documents(dir.write("ok.txt", "caf\xc3\xa9\r\n\xf0\x9f\x98\x80\n")),
            (std::vector<std::string>{"caf\xc3\xa9", "\xf0\x9f\x98\x80"}));
}

TEST(DocumentReader, seek_past_the_end_of_the_file_is_refused) {
  TempDir dir;
  const std::string path = dir.write("s.txt", "a\nb\n");
  DocumentReader reader(path);
  EXPECT_THROW_MSG(reader.seek({.documents = 5, .byte_offset = 40, .line = 9}),
                   "[data] cannot seek " + path + " to byte 40: the file has 4 bytes");
  reader.seek({.documents = 2, .byte_offset = 4, .line = 2});  // the end itself is fine
  EXPECT_EQ(reader.next(), std::nullopt);
}

TEST(DocumentReader, seek_resumes_exactly) {
  TempDir dir;
  for (DocumentFormat format : {DocumentFormat::lines, DocumentFormat::paragraphs}) {
    const std::string path = dir.write("r.txt", "a\nb b\n\nc\n\n\nd\ne\n");
    const std::vector<std::string> all = read_documents(path, {.format = format});
    for (size_t cut = 0; cut <= all.size(); ++cut) {
      DocumentReader first(path, {.format = format});
      for (size_t i = 0; i < cut; ++i) first.next();
      // Through JSON, as a checkpoint stores it.
      const DocumentPosition pos = nlohmann::json(first.position()).get<DocumentPosition>();
      EXPECT_EQ(pos.documents, static_cast<int64_t>(cut));
      DocumentReader second(path, {.format = format});
      second.seek(pos);
      std::vector<std::string> rest;
      while (auto d = second.next()) rest.push_back(*d);
      EXPECT_EQ(rest,
                std::vector<std::string>(all.begin() + static_cast<std::ptrdiff_t>(cut), all.end()))
          << document_format_name(format) << " cut at " << cut;
    }
  }
}

// A file is tokenized a chunk of documents at a time; the chunks join into what one pass
// over all its documents gives.
TEST(TokenizedDocuments, file_in_chunks_equals_all_at_once) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 60; ++i)
    text += "document " + std::to_string(i) + std::string(static_cast<size_t>(i % 7), 'x') +
            " the weather today\n";
  const std::string path = dir.write("docs.txt", text);
  const T5Tokenizer tok =
      T5Tokenizer::load(std::string(SP_FIXTURES_DIR) + "/tokenizer/spiece.model");
  const TokenizedDocuments whole = tokenize_documents(read_documents(path), tok);
  for (size_t chunk : {size_t{1}, size_t{100}, size_t{1} << 20}) {
    SCOPED_TRACE(chunk);
    const TokenizedDocuments chunked = tokenize_file(path, tok, {}, chunk);
    ASSERT_EQ(chunked.size(), 60);
    ASSERT_EQ(chunked.num_tokens(), whole.num_tokens());
    for (int64_t i = 0; i < whole.size(); ++i)
      EXPECT_TRUE(std::ranges::equal(chunked[i], whole[i])) << "document " << i;
  }
}

TEST(Wordnet, synset_line_to_document) {
  const std::string line =
      "00002684 03 n 02 physical_object 0 object 0 002 @ 00001930 n 0000 ~ 00003553 n 0000 | "
      "a tangible and visible entity; an entity that can cast a shadow; \"it was full of "
      "rackets; balls and other objects\"  ";
  const std::optional<WordnetSynset> synset = parse_synset_line(line, 'n', "t:1");
  ASSERT_TRUE(synset.has_value());
  EXPECT_EQ(synset->offset, 2684);
  EXPECT_EQ(synset->lemmas, (std::vector<std::string>{"physical object", "object"}));
  EXPECT_EQ(synset->sentences,
            (std::vector<std::string>{"it was full of rackets; balls and other objects"}));
  EXPECT_EQ(wordnet_document(*synset),
            "physical object, object: a tangible and visible entity; an entity that can cast a "
            "shadow. \"it was full of rackets; balls and other objects\"");
  // Adjective markers go; a gloss with examples only.
  EXPECT_EQ(wordnet_document(
                *parse_synset_line("00001 00 s 01 long(a) 0 000 | \"a long way\"", 'a', "t:2")),
            "long. \"a long way\"");
  EXPECT_EQ(parse_synset_line("  1 This software and database is provided", 'n', "t:3"),
            std::nullopt);
  EXPECT_THROW_MSG(parse_synset_line("00001 00 n 01 cat 0 000", 'n', "data.noun:7"),
                   "data.noun:7: a synset line has no '|'");
  EXPECT_THROW_MSG(parse_synset_line("00001 00 n zz cat 0 000 | x", 'n', "data.noun:8"),
                   "data.noun:8: word count \"zz\" is not hexadecimal");
  EXPECT_THROW_MSG(parse_synset_line("00001 00 n 03 cat 0 | x", 'n', "data.noun:9"),
                   "data.noun:9: expected 3 words");
  EXPECT_THROW_MSG(parse_synset_line("x0001 00 n 01 cat 0 000 | x", 'n', "data.noun:10"),
                   "data.noun:10: expected a synset offset");
}

// Examples are the parts that start with a quote, kept as written (attribution included);
// sentences are every quoted passage in gloss order, also one a definition gives after ':'.
TEST(Wordnet, GlossSplitsIntoDefinitionsExamplesAndSentences) {
  const WordnetSynset g = split_gloss(
      " more than needed:\"long on brains\";  \"the pleasures; of the table\"- J. Galsworthy; "
      "too much; \"an unclosed  example ");
  EXPECT_EQ(g.definitions,
            (std::vector<std::string>{"more than needed:\"long on brains\"", "too much"}));
  EXPECT_EQ(g.examples, (std::vector<std::string>{"\"the pleasures; of the table\"- J. Galsworthy",
                                                  "\"an unclosed example"}));
  EXPECT_EQ(g.sentences,
            (std::vector<std::string>{"long on brains", "the pleasures; of the table"}));
}

// A fake WordNet database: a licence header and n synsets per file, with some glosses
// repeated across files (exact duplicates once built).
std::string make_fake_wordnet(const TempDir& dir, int per_file) {
  const fs::path wn = dir.path / "wordnet";
  fs::create_directories(wn);
  const char* nouns[] = {"cat", "dog", "river", "stone", "garden", "window", "letter", "cloud"};
  const char* verbs[] = {"runs", "sleeps", "falls", "grows", "shines", "waits", "opens", "moves"};
  int k = 0;
  for (const std::string& name : wordnet_data_files()) {
    std::ofstream f(wn / name);
    f << "  1 This software and database is being provided to you, the LICENSEE\n";
    for (int i = 0; i < per_file; ++i, ++k) {
      const char* a = nouns[k % 8];
      const char* b = nouns[(k / 8 + 3) % 8];
      const char* v = verbs[(k * 5 + 1) % 8];
      f << 10000 + k << " 05 n 01 " << a << "_" << b << "_" << k << " 0 000 | "
        << "the " << a << " that " << v << " near the " << b << "; \"a " << a << " " << v
        << " when the " << b << " " << verbs[(k + 2) % 8] << "\"\n";
      if (i % 10 == 0) f << 20000 + k << " 05 n 01 same 0 000 | a repeated gloss\n";
    }
  }
  return wn.string();
}

TEST(Corpus, build_dedup_split_and_vocab) {
  TempDir dir;
  const std::string wn = make_fake_wordnet(dir, 60);
  CorpusBuildOptions o;
  o.out_dir = (dir.path / "corpus").string();
  o.wordnet_dir = wn;
  o.validation_fraction = 0.2;
  o.vocab_size = 120;
  o.vocab_threads = 1;
  const CorpusSummary s = build_corpus(o);
  // 4 files x (60 synsets + 6 repeats of one gloss): all repeats but the first are dropped.
  EXPECT_EQ(s.documents_read, 4 * 66);
  EXPECT_EQ(s.duplicates, 4 * 6 - 1);
  EXPECT_EQ(s.train_documents + s.validation_documents, 4 * 60 + 1);
  EXPECT_GT(s.validation_documents, 20);
  EXPECT_LT(s.validation_documents, 80);
  ASSERT_EQ(s.sources.size(), 4u);
  EXPECT_EQ(s.sources[0].documents, 66);
  EXPECT_EQ(s.sources[0].sha256, sha256_file_hex(wn + "/data.adj"));

  const CorpusFiles files = corpus_files(o.out_dir);
  const std::vector<std::string> train = lines_of(files.train);
  const std::vector<std::string> validation = lines_of(files.validation);
  EXPECT_EQ(static_cast<int64_t>(train.size()), s.train_documents);
  EXPECT_EQ(s.train_sha256, sha256_file_hex(files.train));
  std::set<std::string> all(train.begin(), train.end());
  all.insert(validation.begin(), validation.end());
  EXPECT_EQ(all.size(), train.size() + validation.size()) << "a document appears twice";
  for (const std::string& d : validation) EXPECT_TRUE(in_validation_split(d, 0, 0.2)) << d;
  for (const std::string& d : train) EXPECT_FALSE(in_validation_split(d, 0, 0.2)) << d;
  EXPECT_TRUE(
      all.count("cat stone 0: the cat that sleeps near the stone. \"a cat sleeps when "
                "the stone falls\""));
  EXPECT_TRUE(all.count("same: a repeated gloss"));

  const nlohmann::json manifest = nlohmann::json::parse(std::ifstream(files.manifest));
  EXPECT_EQ(manifest["splits"]["validation"]["documents"], s.validation_documents);
  EXPECT_EQ(manifest["duplicates_removed"], s.duplicates);
  EXPECT_EQ(manifest["vocabulary"]["sha256"], sha256_file_hex(files.spiece_model));

  // The vocabulary has T5's conventions and encodes the corpus without unknowns.
  const T5Tokenizer tok = T5Tokenizer::load(files.spiece_model);
  EXPECT_EQ(tok.spm_size(), s.vocab_pieces);
  EXPECT_LE(tok.spm_size(), 120);
  EXPECT_EQ(tok.id_to_piece(1), "</s>");
  for (int64_t id : tok.encode(train[5])) EXPECT_NE(id, tok.unk_id());
  EXPECT_EQ(tok.decode(tok.encode(train[5])), train[5]);
}

TEST(Corpus, adding_a_file_keeps_the_split) {
  TempDir dir;
  const std::string wn = make_fake_wordnet(dir, 30);
  CorpusBuildOptions o;
  o.wordnet_dir = wn;
  o.validation_fraction = 0.3;
  o.train_vocabulary = false;
  o.out_dir = (dir.path / "a").string();
  build_corpus(o);
  const std::string extra = dir.write("extra.txt",
                                      "a brand new sentence\n\nanother  new\tsentence\n"
                                      "the cat that sleeps near the river\n");
  o.out_dir = (dir.path / "b").string();
  o.text_files = {extra};
  const CorpusSummary s = build_corpus(o);
  EXPECT_EQ(s.sources.back().documents, 3);
  const auto a_train = lines_of((dir.path / "a" / "train.txt").string());
  const auto a_val = lines_of((dir.path / "a" / "validation.txt").string());
  const auto b_train = lines_of((dir.path / "b" / "train.txt").string());
  const auto b_val = lines_of((dir.path / "b" / "validation.txt").string());
  // The first build's documents keep their side and order; the new ones are appended.
  EXPECT_EQ(std::vector<std::string>(b_train.begin(), b_train.begin() + a_train.size()), a_train);
  EXPECT_EQ(std::vector<std::string>(b_val.begin(), b_val.begin() + a_val.size()), a_val);
  EXPECT_EQ(b_train.size() + b_val.size(), a_train.size() + a_val.size() + 3);
  std::set<std::string> b_all(b_train.begin(), b_train.end());
  b_all.insert(b_val.begin(), b_val.end());
  EXPECT_TRUE(b_all.count("another new sentence"));

  // A different seed gives a different split of the same documents.
  o.seed = 7;
  o.out_dir = (dir.path / "c").string();
  build_corpus(o);
  EXPECT_NE(lines_of((dir.path / "c" / "validation.txt").string()), b_val);
}

// corpus.max_documents and tokenizer.input_sentence_size of a spec reach the build.
TEST(Corpus, max_documents_and_input_sentence_size_are_honoured) {
  TempDir dir;
  const std::string wn = make_fake_wordnet(dir, 60);
  CorpusBuildOptions o;
  o.wordnet_dir = wn;
  o.vocab_size = 120;
  o.vocab_threads = 1;
  o.out_dir = (dir.path / "all").string();
  const CorpusSummary all = build_corpus(o);
  // SentencePiece's smallest sample (it refuses 1..100): fewer sentences, fewer pieces.
  o.input_sentence_size = 101;
  o.out_dir = (dir.path / "sampled").string();
  const CorpusSummary sampled = build_corpus(o);
  EXPECT_GT(all.train_documents, 200);
  EXPECT_LT(sampled.vocab_pieces, all.vocab_pieces);
  EXPECT_EQ(nlohmann::json::parse(std::ifstream(
                corpus_files(o.out_dir).manifest))["vocabulary"]["input_sentence_size"],
            101);

  const std::string text = dir.write("more.txt", "one more line\nand another\n");
  o.text_files = {text};
  o.train_vocabulary = false;
  o.max_documents = 70;  // the first WordNet file's 66, then 4 of the next; none of more.txt
  o.out_dir = (dir.path / "few").string();
  const CorpusSummary few = build_corpus(o);
  EXPECT_EQ(few.documents_read, 70);
  EXPECT_EQ(few.train_documents + few.validation_documents, 70 - 6);  // a gloss repeated 6x
  EXPECT_EQ(few.sources.back().documents, 0);
  EXPECT_EQ(nlohmann::json::parse(std::ifstream(dir.path / "few/corpus.json"))["max_documents"],
            70);
}

// A source's document count is what was read from it: with max_documents, a WordNet file
// cut short (or never reached) reports the documents taken, like a text file does, and the
// sources add up to documents_read.
TEST(Corpus, source_counts_are_the_documents_read) {
  TempDir dir;
  const std::string wn = make_fake_wordnet(dir, 60);  // 66 documents per file
  CorpusBuildOptions o;
  o.wordnet_dir = wn;
  o.train_vocabulary = false;
  o.text_files = {dir.write("more.txt", "one more line\nand another\n")};
  o.max_documents = 70;
  o.out_dir = (dir.path / "few").string();
  const CorpusSummary s = build_corpus(o);
  ASSERT_EQ(s.sources.size(), 5u);
  const std::vector<int64_t> expected = {66, 4, 0, 0, 0};
  int64_t total = 0;
  for (size_t i = 0; i < s.sources.size(); ++i) {
    EXPECT_EQ(s.sources[i].documents, expected[i]) << s.sources[i].name;
    total += s.sources[i].documents;
  }
  EXPECT_EQ(total, s.documents_read);
  const nlohmann::json manifest =
      nlohmann::json::parse(std::ifstream(dir.path / "few/corpus.json"));
  EXPECT_EQ(manifest["sources"][1]["documents"], 4);
}

// A rebuild into the same directory that fails (here: too small a vocabulary) must not leave
// the new splits passing for a corpus beside the old manifest and vocabulary.
TEST(Corpus, a_failed_rebuild_leaves_no_corpus_behind) {
  TempDir dir;
  CorpusBuildOptions o;
  o.out_dir = (dir.path / "corpus").string();
  o.wordnet_dir = make_fake_wordnet(dir, 30);
  o.vocab_size = 120;
  o.vocab_threads = 1;
  build_corpus(o);
  ASSERT_NO_THROW(corpus_files(o.out_dir));
  o.text_files = {dir.write("more.txt", "some more text 0123456789 XYZ\n")};
  o.vocab_size = 8;
  EXPECT_ANY_THROW(build_corpus(o));
  EXPECT_THROW_MSG(corpus_files(o.out_dir), "is not a built corpus");

  // Rebuilt without a vocabulary: an earlier build's spiece.model does not stay behind.
  o.vocab_size = 120;
  build_corpus(o);
  o.train_vocabulary = false;
  build_corpus(o);
  EXPECT_FALSE(fs::exists(fs::path(o.out_dir) / "spiece.model"));
  EXPECT_TRUE(fs::exists(fs::path(o.out_dir) / "corpus.json"));
}

TEST(Corpus, clear_errors) {
  TempDir dir;
  CorpusBuildOptions o;
  o.out_dir = (dir.path / "x").string();
  o.wordnet_dir = (dir.path / "no-wordnet").string();
  EXPECT_THROW_MSG(build_corpus(o), "install Debian's wordnet-base");
  fs::create_directories(dir.path / "half");
  std::ofstream(dir.path / "half" / "data.adj") << "";
  o.wordnet_dir = (dir.path / "half").string();
  EXPECT_THROW_MSG(build_corpus(o), "data.adv is missing: install Debian's wordnet-base");
  o.use_wordnet = false;
  EXPECT_THROW_MSG(build_corpus(o), "nothing to read");
  o.text_files = {(dir.path / "missing.txt").string()};
  EXPECT_THROW_MSG(build_corpus(o), "missing.txt does not exist");
  EXPECT_THROW_MSG(corpus_files((dir.path / "x").string()), "is not a built corpus");
}

}  // namespace
}  // namespace sp
