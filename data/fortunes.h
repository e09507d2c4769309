/// @file data/fortunes.h @brief Loads the fortune files of a directory (Debian's `fortunes` package) as documents, split train/validation by file.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ember::data {

/// Where Debian's `fortunes` package installs its fortune files.
inline constexpr const char* kDefaultFortunesDir = "/usr/share/games/fortunes";

/// Documents of a text corpus, split by source file, and the files each side came from (in order).
struct TextCorpus {
  std::vector<std::string> train_docs, val_docs;
  std::vector<std::string> train_files, val_files;  ///< file names (without the directory)

  /// Total bytes of the documents of each side.
  int64_t train_bytes() const;
  int64_t val_bytes() const;
};

/// Cuts the text of one fortune file into documents at the lines that are exactly "%" (no trailing
/// blanks; a "%" line ends with '\n' or the text). A document is the text between two such lines with
/// its lines' '\n' kept (the file's last line may lack one); documents holding only whitespace (space,
/// tab, '\n', '\r', '\v', '\f') or nothing are dropped.
std::vector<std::string> split_fortunes(std::string_view text);

/// Reads every regular file of `dir` whose name does not end in ".dat" (the strfile indexes); symbolic
/// links (the *.u8 aliases), directories and other entries are skipped. Files are taken in byte order of
/// their names. Each is cut into documents (fortunes) by split_fortunes; files left with no document
/// (empty ones) are skipped. Bytes are kept as they are (no UTF-8 decoding: byte tokens).
///
/// The split is by file, so no fortune file contributes to both sides: the file at position p of that
/// sorted list of files with documents goes to validation when p % val_every == 0, else to training
/// (the default 8 puts 6 of the 43 files of fortunes 1:1.99.1, about 11% of the bytes, in validation).
/// Throws ember::Error when `dir` does not exist (saying how to install the package), is not a directory
/// or cannot be read, when a file cannot be read, when val_every < 2, and when fewer than 2 files hold
/// documents (one side would be empty).
TextCorpus load_fortunes(const std::string& dir = kDefaultFortunesDir, int64_t val_every = 8);

}  // namespace ember::data
