/// @file data/fashion_mnist.cpp @brief Fashion-MNIST loading: file lookup, shape checks and label conversion.
#include "data/fashion_mnist.h"

#include <filesystem>

#include "core/error.h"
#include "data/idx.h"

namespace ember::data {

namespace {

std::string find_file(const std::string& dir, const std::string& stem) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status ds = fs::status(dir, ec);
  EMBER_CHECK(!ec || ec == std::errc::no_such_file_or_directory, "Fashion-MNIST: cannot read the data directory ", dir,
              ": ", ec.message());
  EMBER_CHECK(!fs::exists(ds) || fs::is_directory(ds), "Fashion-MNIST: ", dir, " is not a directory (--data DIR)");
  for (const std::string& name : {stem + ".gz", stem}) {
    const fs::path p = fs::path(dir) / name;
    const fs::file_status st = fs::status(p, ec);  // an error, not an exception, for an unreadable directory
    EMBER_CHECK(!ec || ec == std::errc::no_such_file_or_directory, "Fashion-MNIST: cannot read the data directory ",
                dir, ": ", ec.message(), " (looking for ", name, ")");
    if (fs::exists(st)) {
      EMBER_CHECK(fs::is_regular_file(st), "Fashion-MNIST: ", p.string(), " is not a regular file");
      return p.string();
    }
  }
  EMBER_FAIL("Fashion-MNIST: neither ", stem, ".gz nor ", stem, " found in ", dir,
             " (install Debian's dataset-fashion-mnist or pass --data DIR)");
}

}  // namespace

std::shared_ptr<ImageDataset> load_fashion_mnist(const std::string& dir, Split split) {
  const std::string prefix = split == Split::Train ? "train" : "t10k";
  const std::string images_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  IdxArray images = read_idx(images_path);
  IdxArray labels = read_idx(labels_path);
  EMBER_CHECK(images.dims.size() == 3, "Fashion-MNIST: ", images_path, " has ", images.dims.size(),
              " dimensions, expected 3 (count, rows, cols)");
  EMBER_CHECK(labels.dims.size() == 1, "Fashion-MNIST: ", labels_path, " has ", labels.dims.size(),
              " dimensions, expected 1 (count)");
  EMBER_CHECK(images.dims[0] == labels.dims[0], "Fashion-MNIST: ", images_path, " holds ", images.dims[0],
              " images but ", labels_path, " holds ", labels.dims[0], " labels");
  std::vector<int64_t> y(labels.data.begin(), labels.data.end());
  for (size_t i = 0; i < y.size(); ++i)
    EMBER_CHECK(y[i] < 10, "Fashion-MNIST: ", labels_path, ": label ", y[i], " of sample ", i, " is not in [0, 10)");
  return std::make_shared<ImageDataset>(std::move(images.data), std::move(y),
                                        Shape{1, images.dims[1], images.dims[2]}, 10);
}

}  // namespace ember::data
