// The S3 test server scripts/s3_test_server.py starts, as the S3 benchmarks reach it.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#include "shardvec/object_store.h"

namespace shardvec {

// StoreOptions for the server; exits with how to start one when there is none.
inline StoreOptions S3ServerOptions(const char* program) {
  StoreOptions o;
  const char* endpoint = std::getenv("SHARDVEC_TEST_S3_ENDPOINT");
  if (!endpoint) {
    std::fprintf(stderr, "run under: .venv/bin/python scripts/s3_test_server.py -- %s\n", program);
    std::exit(2);
  }
  o.endpoint_url = endpoint;
  o.region = "us-east-1";
  o.access_key_id = std::getenv("SHARDVEC_TEST_S3_KEY_ID");
  o.secret_access_key = std::getenv("SHARDVEC_TEST_S3_SECRET");
  return o;
}

}  // namespace shardvec
