// One Session run from several threads at once gives the same outputs as a lone run.
#include <gtest/gtest.h>

#include <thread>

#include "brink/session.h"
#include "loader/npy.h"

namespace brink {
namespace {

TEST(SessionThreads, ConcurrentRunsMatchASequentialRun) {
  auto session = Session::load(std::string(BRINK_SOURCE_DIR) + "/models/digits_cnn.onnx");
  ASSERT_TRUE(session.is_ok()) << session.status().message();
  auto data = npy::read_npz(std::string(BRINK_SOURCE_DIR) + "/models/digits_test.npz");
  ASSERT_TRUE(data.is_ok()) << data.status().message();
  const Tensor& images = (*data)[0].second;
  ASSERT_EQ((*data)[0].first, "image");
  auto expected = (*session)->run({{"image", images}});
  ASSERT_TRUE(expected.is_ok()) << expected.status().message();
  const Tensor& want = (*expected)[0];

  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 5; ++rep) {
        auto got = (*session)->run({{"image", images}});
        if (!got.is_ok() || (*got)[0].shape() != want.shape()) {
          ++mismatches[static_cast<size_t>(t)];
          continue;
        }
        for (int64_t i = 0; i < want.numel(); ++i)
          if ((*got)[0].data<float>()[i] != want.data<float>()[i])
            ++mismatches[static_cast<size_t>(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace brink
