// libcurl, loaded when it is first used rather than when a program starts.
//
// Only transfers to a bucket and the coordinator's notifications use libcurl, but linking it maps
// its whole dependency tree (Kerberos, LDAP, GnuTLS, libssh2, ...) into every program at start: an
// empty program linked with it starts in 13 ms of CPU instead of 1.3 on a VM where page faults are
// dear, and every `assay` command paid that. curl_loader.cc defines the few libcurl functions Assay
// calls (curl_easy_init, curl_easy_setopt, ...: the code calls them by their own names, with
// curl.h's type checks) and forwards each to libcurl.so.4, opened with dlopen on the first call.
#pragma once

#include "absl/status/status.h"

namespace assay {

// OK once libcurl is loaded (loading it now if needed); otherwise why not, naming the library.
absl::Status CurlReady();

}  // namespace assay
