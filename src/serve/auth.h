// Optional bearer-token authentication: the token file and the Authorization header check.
#pragma once

#include <string_view>


namespace shardvec::serve {

// (ReadAuthTokenFile, the token file, is declared in shardvec/serve.h.)

// Whether `header` (an Authorization header's value) is "Bearer <token>". Compares in time that
// does not depend on where the texts differ.
bool BearerTokenMatches(std::string_view header, std::string_view token);

}  // namespace shardvec::serve
