// Status carries an error kind (and a subject) beside its code; every way a status is passed on keeps them.
#include "shardvec/status.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "common/status_macros.h"

namespace shardvec {
namespace {

Status Closed() {
  return Status::FailedPrecondition("reader is closed").WithKind(ErrorKind::kReaderClosed).WithSubject("r1");
}

Status PassedOn() {
  RETURN_IF_ERROR(Closed());
  return Status::OK();
}

Result<int> Failing() { return Closed(); }

Result<int> AssignedOn() {
  ASSIGN_OR_RETURN(int value, Failing());
  return value + 1;
}

void ExpectClosed(const Status& st, const std::string& message) {
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(st.kind(), ErrorKind::kReaderClosed);
  EXPECT_EQ(st.subject(), "r1");
  EXPECT_EQ(st.message(), message);
}

TEST(StatusTest, AStatusHasNoKindUnlessGivenOne) {
  EXPECT_EQ(Status::Corruption("x").kind(), ErrorKind::kNone);
  EXPECT_EQ(Status::Corruption("x").subject(), "");
  EXPECT_EQ(Status::Corruption("x").WithKind(ErrorKind::kManifestParse).kind(), ErrorKind::kManifestParse);
  // An OK status stays OK and kind-less.
  const Status ok = Status::OK().WithKind(ErrorKind::kManifestParse).WithSubject("s");
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.kind(), ErrorKind::kNone);
  EXPECT_EQ(ok.subject(), "");
}

TEST(StatusTest, WithContextAndWithMessageKeepCodeKindAndSubject) {
  ExpectClosed(Closed().WithContext("search"), "search: reader is closed");
  ExpectClosed(Closed().WithContext("a").WithContext("b"), "b: a: reader is closed");
  ExpectClosed(Closed().WithMessage("reworded"), "reworded");
  EXPECT_EQ(Closed().WithContext("search").ToString(), "FailedPrecondition: search: reader is closed");
}

TEST(StatusTest, ReturnIfErrorAndResultKeepTheKind) {
  ExpectClosed(PassedOn(), "reader is closed");
  ExpectClosed(Failing().status(), "reader is closed");
  ExpectClosed(AssignedOn().status(), "reader is closed");
  Result<int> copied = Failing();
  Result<int> moved = std::move(copied);
  ExpectClosed(moved.status(), "reader is closed");
}

TEST(StatusTest, WithKindIfSetsAKindOnlyOnItsCodeAndOnlyOnce) {
  EXPECT_EQ(Status::Corruption("x").WithKindIf(StatusCode::kCorruption, ErrorKind::kManifestParse).kind(),
            ErrorKind::kManifestParse);
  EXPECT_EQ(Status::NotFound("x").WithKindIf(StatusCode::kCorruption, ErrorKind::kManifestParse).kind(),
            ErrorKind::kNone);
  const Status shard = Status::Corruption("x").WithKind(ErrorKind::kShardVerification);
  EXPECT_EQ(shard.WithKindIf(StatusCode::kCorruption, ErrorKind::kManifestParse).kind(),
            ErrorKind::kShardVerification);
  EXPECT_TRUE(Status::OK().WithKindIf(StatusCode::kOk, ErrorKind::kManifestParse).ok());
  EXPECT_EQ(Status::OK().WithKindIf(StatusCode::kOk, ErrorKind::kManifestParse).kind(), ErrorKind::kNone);
}

// Checks that every value of the enum up to `last` has a name of its own (never "Unknown").
template <typename Enum, typename NameOf>
void ExpectDistinctNames(Enum last, NameOf name_of) {
  std::set<std::string_view> names;
  for (int v = 0; v <= static_cast<int>(last); ++v) {
    const std::string_view name = name_of(static_cast<Enum>(v));
    EXPECT_NE(name, "Unknown") << v;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(last) + 1);
}

TEST(StatusTest, EveryKindAndCodeHasItsOwnName) {
  ExpectDistinctNames(ErrorKind::kThreadLimit, ErrorKindName);
  ExpectDistinctNames(StatusCode::kFailedPrecondition, StatusCodeName);
  EXPECT_EQ(ErrorKindName(ErrorKind::kNone), "None");
  EXPECT_EQ(ErrorKindName(ErrorKind::kPublishConflict), "PublishConflict");
  EXPECT_EQ(StatusCodeName(StatusCode::kFailedPrecondition), "FailedPrecondition");
}

}  // namespace
}  // namespace shardvec
