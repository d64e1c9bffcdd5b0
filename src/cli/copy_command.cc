// shardvec copy SRC DST: copies published snapshots to another store (folder or S3) so that the copy
// is a store of its own (every URL in its manifests and _CURRENT under DST).
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "shardvec/copy.h"

namespace shardvec::cli {
namespace {

struct CopyArgs {
  std::string src;
  std::string dst;
  StoreOptions store_options;
  std::string snapshot = "current";
  bool all_history = false;
  int64_t max_workers = 0;
  std::string staging_dir;
  bool quiet = false;
  bool json = false;
  bool raw_bytes = false;  // --bytes
};

void PrintCopy(const CopyReport& r, bool json, bool raw_bytes) {
  if (json) {
    PrintJson({{"manifests", r.manifests},           {"current_ref", r.current_ref},
               {"run_id", r.run_id},                 {"objects_copied", r.objects_copied},
               {"objects_skipped", r.objects_skipped}, {"bytes_copied", r.bytes_copied},
               {"bytes_skipped", r.bytes_skipped}});
    return;
  }
  std::printf("copied %lld objects (%s); %lld already there (%s)\n", static_cast<long long>(r.objects_copied),
              SizeText(r.bytes_copied, raw_bytes).c_str(), static_cast<long long>(r.objects_skipped),
              SizeText(r.bytes_skipped, raw_bytes).c_str());
  std::printf("%zu manifest(s) in DST\n", r.manifests.size());
  if (r.current_ref.empty()) {
    std::printf("SRC has no _CURRENT, so DST's _CURRENT was not set\n");
  } else {
    std::printf("DST _CURRENT: %s (run_id=%s)\n", DisplayText(r.current_ref).c_str(), DisplayText(r.run_id).c_str());
  }
}

int RunCopy(const CopyArgs& a) {
  auto src = OpenStore(a.src, a.store_options);
  if (!src.ok()) return ReportError("copy", src.status().WithContext("SRC"));
  auto dst = OpenStore(a.dst, a.store_options);
  if (!dst.ok()) return ReportError("copy", dst.status().WithContext("DST"));
  ProgressLine line(!a.quiet && !a.json && StderrIsTty());
  CopyOptions options;
  if (a.snapshot != "current") options.run_id = a.snapshot;
  options.all_history = a.all_history;
  options.max_workers = a.max_workers;
  options.staging_dir = a.staging_dir;
  options.progress = [&line](const CopyProgress& p) { line.Update("copy objects", p.objects_done, p.objects_total); };
  auto report = CopySnapshots(**src, **dst, options);
  line.Finish();
  if (!report.ok()) return ReportError("copy", report.status());
  PrintCopy(*report, a.json, a.raw_bytes);
  return kExitOk;
}

}  // namespace

void RegisterCopyCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<CopyArgs>();
  CLI::App* cmd = app.add_subcommand(
      "copy", "Copy published snapshots to another store (folder or S3); the copy's URLs name DST");
  cmd->add_option("SRC", args->src, "Store copied from: a folder, file:///abs/path or s3://bucket/prefix")->required();
  cmd->add_option("DST", args->dst, "Store copied to: a folder, file:///abs/path or s3://bucket/prefix")->required();
  AddS3Options(cmd, args->store_options, {{"SRC", &args->src}, {"DST", &args->dst}});
  CLI::Option* snapshot = cmd->add_option(
      "--snapshot", args->snapshot, "The snapshot copied: a run id (its newest manifest) or current (default)");
  cmd->add_flag("--all-history", args->all_history,
                "Copy every manifest SRC lists; DST's _CURRENT names what SRC's names")
      ->excludes(snapshot);
  cmd->add_option("--max-workers", args->max_workers, "Objects copied at once (default 8)");
  cmd->add_option("--staging-dir", args->staging_dir,
                  "Local folder for objects in transit, private to this user (default: ~/.cache/shardvec/copy)");
  cmd->add_flag("--quiet", args->quiet, "No progress line");
  cmd->add_flag("--json", args->json, "Print the result as one JSON object");
  AddBytesFlag(cmd, args->raw_bytes);
  cmd->callback([args, &exit_code] { exit_code = RunCopy(*args); });
}

}  // namespace shardvec::cli
