// The test-only FaultInjectionStore (tests/support): which store operation each publish step is, and
// that an armed point fails or passes exactly as asked while every other call goes through.
#include "support/fault_injection_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <mutex>

#include "format/keys.h"
#include "support/publish_harness.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using testing::FaultInjectionStore;

std::shared_ptr<ObjectStore> Folder(const testing::TempDir& tmp, const std::string& name) {
  auto store = OpenStore((tmp / name).string());
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return *store;
}

TEST(FaultInjectionStoreTest, AWritePassesEveryPublishStepInOrder) {
  testing::TempDir tmp;
  std::mutex mu;
  std::vector<std::string> passed;
  auto store = std::make_shared<FaultInjectionStore>(Folder(tmp, "store"), [&](std::string_view point) {
    std::lock_guard<std::mutex> lock(mu);
    passed.emplace_back(point);
    return Status::OK();
  });
  testing::PublishHarness world(tmp / "work", (tmp / "store").string(), store, "");
  auto written = world.WriteInProcess({"A", testing::RandomMatrix(90, 8, 1), false});
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  ASSERT_FALSE(written->shards.empty());
  std::vector<std::string> expected(written->shards.size(), std::string(testing::kFaultAfterShardUpload));
  for (std::string_view step : {testing::kFaultAfterRoutingArtifacts, testing::kFaultAfterManifestPut,
                                testing::kFaultDuringCurrentSwap, testing::kFaultAfterCurrentSwap}) {
    expected.emplace_back(step);
  }
  EXPECT_THAT(passed, ElementsAreArray(expected));
}

TEST(FaultInjectionStoreTest, AnArmedPointFailsItsNthPassOnly) {
  testing::TempDir tmp;
  std::shared_ptr<ObjectStore> inner = Folder(tmp, "store");
  const std::string shard = ShardKey("r", 0, 0), other = ShardKey("r", 1, 0);
  testing::WriteText(tmp / "first.db", "bytes");
  testing::WriteText(tmp / "second.db", "bytes");

  FaultInjectionStore second_upload(inner, testing::FaultAt(testing::kFaultAfterShardUpload, 2, false));
  ASSERT_TRUE(second_upload.PutFile(shard, tmp / "first.db").ok());
  const Status failed = second_upload.PutFile(other, tmp / "second.db");
  EXPECT_EQ(failed.code(), StatusCode::kInternal);
  EXPECT_THAT(failed.message(), HasSubstr("fault injected at 'after_shard_upload'"));
  EXPECT_TRUE(inner->Head(other).ok()) << "after the upload: the object is there";
  EXPECT_TRUE(second_upload.Put("runs/x", "y").ok()) << "other operations pass";

  const std::string manifest = ManifestKey("2026-01-01T00:00:00.000000Z", "r");
  FaultInjectionStore before_manifest(inner, testing::FaultAt(testing::kFaultAfterRoutingArtifacts, 1, false));
  EXPECT_EQ(before_manifest.PutIfAbsent(manifest, "{}").code(), StatusCode::kInternal);
  EXPECT_EQ(inner->Head(manifest).status().code(), StatusCode::kNotFound) << "before the manifest's upload";

  FaultInjectionStore during_swap(inner, testing::FaultAt(testing::kFaultDuringCurrentSwap, 1, false));
  EXPECT_EQ(during_swap.CompareAndSwap(std::string(kCurrentKey), "x", std::nullopt).status().code(),
            StatusCode::kInternal);
  EXPECT_EQ(inner->Head(kCurrentKey).status().code(), StatusCode::kNotFound) << "_CURRENT was not swapped";
  EXPECT_TRUE(during_swap.CompareAndSwap(std::string(kCurrentKey), "x", std::nullopt).ok()) << "pass 2 goes on";
}

TEST(FaultInjectionStoreTest, AMalformedFaultIsRefusedNamingIt) {
  for (const char* spec : {"after_manifest_put:0", "after_manifest_put:x", "after_manifest_put:2x"}) {
    auto hook = testing::ParseFault(spec, "crash");
    ASSERT_FALSE(hook.ok()) << spec;
    EXPECT_EQ(hook.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(hook.status().message(), HasSubstr(spec));
  }
  auto hook = testing::ParseFault("after_manifest_put", "explode");
  ASSERT_FALSE(hook.ok());
  EXPECT_THAT(hook.status().message(), HasSubstr("'explode'"));
  EXPECT_TRUE(testing::ParseFault("after_manifest_put:3", "fail").ok());
}

}  // namespace
}  // namespace shardvec
