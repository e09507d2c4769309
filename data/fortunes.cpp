/// @file data/fortunes.cpp @brief Fortune files: directory listing, "%"-line splitting and the by-file train/validation split.
#include "data/fortunes.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>

#include "core/error.h"

namespace ember::data {

namespace {

int64_t total_bytes(const std::vector<std::string>& docs) {
  int64_t n = 0;
  for (const std::string& d : docs) n += static_cast<int64_t>(d.size());
  return n;
}

bool blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
  });
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  EMBER_CHECK(in.is_open(), "load_fortunes: cannot open ", p.string());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EMBER_CHECK(!in.bad(), "load_fortunes: error reading ", p.string());
  return text;
}

}  // namespace

int64_t TextCorpus::train_bytes() const { return total_bytes(train_docs); }
int64_t TextCorpus::val_bytes() const { return total_bytes(val_docs); }

std::vector<std::string> split_fortunes(std::string_view text) {
  std::vector<std::string> docs;
  std::string cur;
  auto flush = [&] {
    if (!blank(cur)) docs.push_back(std::move(cur));
    cur.clear();
  };
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    const size_t line_end = nl == std::string_view::npos ? text.size() : nl;
    const size_t next = nl == std::string_view::npos ? text.size() : nl + 1;
    if (text.substr(pos, line_end - pos) == "%")
      flush();
    else
      cur.append(text.substr(pos, next - pos));
    pos = next;
  }
  flush();
  return docs;
}

TextCorpus load_fortunes(const std::string& dir, int64_t val_every) {
  namespace fs = std::filesystem;
  EMBER_CHECK(val_every >= 2, "load_fortunes: val_every must be >= 2, got ", val_every,
              " (every val_every-th file goes to validation)");
  std::error_code ec;
  const fs::file_status ds = fs::status(dir, ec);
  EMBER_CHECK(!ec || ec == std::errc::no_such_file_or_directory, "load_fortunes: cannot read ", dir, ": ",
              ec.message());
  EMBER_CHECK(fs::exists(ds), dir,
              ": no such directory; install Debian's fortunes package (apt-get install fortunes) or point to "
              "another directory (ember-train-lm --data DIR)");
  EMBER_CHECK(fs::is_directory(ds), "load_fortunes: ", dir, " is not a directory");

  std::vector<std::string> names;
  fs::directory_iterator it(dir, ec), end;
  EMBER_CHECK(!ec, "load_fortunes: cannot list ", dir, ": ", ec.message());
  for (; it != end; it.increment(ec)) {
    const fs::file_status st = it->symlink_status(ec);  // the link itself: *.u8 aliases are skipped
    EMBER_CHECK(!ec, "load_fortunes: cannot stat ", it->path().string(), ": ", ec.message());
    const std::string name = it->path().filename().string();
    if (!fs::is_regular_file(st) || name.ends_with(".dat")) continue;
    names.push_back(name);
  }
  EMBER_CHECK(!ec, "load_fortunes: cannot list ", dir, ": ", ec.message());
  std::sort(names.begin(), names.end());

  TextCorpus corpus;
  int64_t position = 0;  // among the files that hold documents
  for (const std::string& name : names) {
    std::vector<std::string> docs = split_fortunes(read_file(fs::path(dir) / name));
    if (docs.empty()) continue;
    const bool val = position++ % val_every == 0;
    (val ? corpus.val_files : corpus.train_files).push_back(name);
    std::vector<std::string>& side = val ? corpus.val_docs : corpus.train_docs;
    side.insert(side.end(), std::make_move_iterator(docs.begin()), std::make_move_iterator(docs.end()));
  }
  EMBER_CHECK(position >= 1, "load_fortunes: ", dir, " holds no fortunes: no text in its ", names.size(),
              " regular file(s) other than *.dat");
  EMBER_CHECK(position >= 2, "load_fortunes: ", dir, " holds fortunes in only one file (", corpus.val_files.front(),
              "); the train/validation split is by file and needs at least 2");
  return corpus;
}

}  // namespace ember::data
