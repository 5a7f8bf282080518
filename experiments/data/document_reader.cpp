#include "experiments/data/document_reader.h"

#include <cstdio>
#include <utility>

#include "models/tokenizer/utf8.h"
#include "tensor/error.h"

namespace sp {
namespace {

bool is_blank(std::string_view line) { return utf8::strip(line).empty(); }

}  // namespace

DocumentFormat parse_document_format(const std::string& name) {
  if (name == "lines") return DocumentFormat::lines;
  if (name == "paragraphs") return DocumentFormat::paragraphs;
  if (name == "jsonl") return DocumentFormat::jsonl;
  fail(str_cat("[data] unknown document format \"", name,
               "\"; expected lines, paragraphs or jsonl"));
}

const char* document_format_name(DocumentFormat format) {
  switch (format) {
    case DocumentFormat::lines: return "lines";
    case DocumentFormat::paragraphs: return "paragraphs";
    case DocumentFormat::jsonl: return "jsonl";
  }
  return "?";
}

void to_json(nlohmann::json& j, const DocumentPosition& p) {
  j = nlohmann::json{{"documents", p.documents}, {"byte_offset", p.byte_offset}, {"line", p.line}};
}

void from_json(const nlohmann::json& j, DocumentPosition& p) {
  p.documents = j.at("documents").get<int64_t>();
  p.byte_offset = j.at("byte_offset").get<uint64_t>();
  p.line = j.at("line").get<int64_t>();
}

DocumentReader::DocumentReader(std::string path, DocumentReaderOptions options)
    : path_(std::move(path)), options_(std::move(options)), in_(path_, std::ios::binary) {
  SP_CHECK(in_.is_open(), "[data] cannot open ", path_);
}

std::optional<std::string> DocumentReader::read_line() {
  std::string line;
  if (!std::getline(in_, line)) {
    SP_CHECK(in_.eof(), "[data] error reading ", path_, " at line ", pos_.line + 1);
    return std::nullopt;
  }
  // getline consumed the '\n' unless the file ended without one.
  pos_.byte_offset += line.size() + (in_.eof() ? 0 : 1);
  ++pos_.line;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  // Checked here for every format: a stray byte would reach the vocabulary (or, in jsonl,
  // an error message) as is.
  if (const size_t bad = utf8::first_invalid(line); bad != std::string::npos) {
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(line[bad]));
    fail(str_cat(path_, ":", pos_.line, ": not valid UTF-8 (byte ", byte, " at column ", bad + 1,
                 "); documents must be UTF-8 text"));
  }
  return line;
}

std::optional<std::string> DocumentReader::next() {
  std::optional<std::string> line;
  // Skip blank lines before a document in every format.
  while ((line = read_line()) && is_blank(*line)) {
  }
  if (!line) return std::nullopt;
  std::string doc;
  switch (options_.format) {
    case DocumentFormat::lines:
      doc = std::move(*line);
      break;
    case DocumentFormat::paragraphs: {
      doc = std::move(*line);
      // A paragraph ends at a blank line (consumed) or the end of the file.
      while ((line = read_line()) && !is_blank(*line)) {
        doc += '\n';
        doc += *line;
      }
      break;
    }
    case DocumentFormat::jsonl: {
      const int64_t line_no = pos_.line;  // 1-based number of the line just read
      nlohmann::json value;
      try {
        value = nlohmann::json::parse(*line);
      } catch (const nlohmann::json::parse_error& e) {
        fail(str_cat(path_, ":", line_no, ": not valid JSON (", parse_error_text(e), ")"));
      }
      SP_CHECK(value.is_object(), path_, ":", line_no, ": expected a JSON object");
      const auto it = value.find(options_.jsonl_field);
      SP_CHECK(it != value.end(), path_, ":", line_no, ": field \"", options_.jsonl_field,
               "\" is missing");
      SP_CHECK(it->is_string(), path_, ":", line_no, ": field \"", options_.jsonl_field,
               "\" must be a string");
      doc = it->get<std::string>();
      break;
    }
  }
  ++pos_.documents;
  return doc;
}

void DocumentReader::seek(const DocumentPosition& position) {
  in_.clear();
  in_.seekg(0, std::ios::end);
  const std::streamoff size = in_.tellg();
  // Past the end, reading would quietly find no more documents (the file shrank, or the
  // position is another file's).
  SP_CHECK(size >= 0 && position.byte_offset <= static_cast<uint64_t>(size), "[data] cannot seek ",
           path_, " to byte ", position.byte_offset, ": the file has ", size, " bytes");
  in_.seekg(static_cast<std::streamoff>(position.byte_offset));
  SP_CHECK(in_.good(), "[data] cannot seek ", path_, " to byte ", position.byte_offset);
  pos_ = position;
}

std::vector<std::string> read_documents(const std::string& path,
                                        const DocumentReaderOptions& options) {
  DocumentReader reader(path, options);
  std::vector<std::string> docs;
  while (auto doc = reader.next()) docs.push_back(std::move(*doc));
  return docs;
}

std::string normalize_whitespace(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t len = 0;
    const char32_t c = utf8::decode(text, pos, &len);
    if (utf8::is_space(c)) {
      pending_space = !out.empty();
    } else {
      if (pending_space) out.push_back(' ');
      pending_space = false;
      out.append(text.substr(pos, len));
    }
    pos += len;
  }
  return out;
}

}  // namespace sp
