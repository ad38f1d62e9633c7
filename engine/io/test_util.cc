#include "engine/io/test_util.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace slabserve {
namespace testing {

std::string SafetensorsImage(const std::vector<RawTensor>& tensors,
                             size_t header_alignment) {
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  std::string data;
  for (const RawTensor& t : tensors) {
    header[t.name] = {
        {"dtype", t.dtype},
        {"shape", t.shape},
        {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data += t.bytes;
  }
  std::string text = header.dump();
  while ((8 + text.size()) % header_alignment != 0) text += ' ';
  return SafetensorsImage(text, data);
}

std::string SafetensorsImage(const std::string& header,
                             const std::string& data) {
  std::string image(8, '\0');
  uint64_t length = header.size();
  for (int i = 0; i < 8; ++i) image[i] = static_cast<char>(length >> (8 * i));
  return image + header + data;
}

std::string MakeTempDir(const std::string& name) {
  const char* root = std::getenv("TEST_TMPDIR");
  std::filesystem::path dir =
      (root != nullptr ? std::filesystem::path(root)
                       : std::filesystem::temp_directory_path()) /
      name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace testing
}  // namespace slabserve
