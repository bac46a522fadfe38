#include "common/s3/curl_loader.h"

#include <curl/curl.h>
#include <dlfcn.h>

#include <cstdarg>
#include <string>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"

namespace assay {
namespace {

constexpr const char* kLibrary = "libcurl.so.4";

using AnyFunction = void (*)();

struct CurlApi {
  CURLcode (*global_init)(long) = nullptr;
  CURL* (*easy_init)() = nullptr;
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...) = nullptr;
  CURLcode (*easy_perform)(CURL*) = nullptr;
  void (*easy_cleanup)(CURL*) = nullptr;
  void (*easy_reset)(CURL*) = nullptr;
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...) = nullptr;
  const char* (*easy_strerror)(CURLcode) = nullptr;
  curl_slist* (*slist_append)(curl_slist*, const char*) = nullptr;
  void (*slist_free_all)(curl_slist*) = nullptr;
  std::string error;  // empty once every function was found
};

template <typename Fn>
void Find(void* library, const char* name, Fn* out, std::string* error) {
  *out = reinterpret_cast<Fn>(::dlsym(library, name));
  if (*out == nullptr && error->empty()) error->assign(absl::StrCat(kLibrary, " has no ", name));
}

const CurlApi& Api() {
  static const CurlApi api = [] {
    CurlApi a;
    void* library = ::dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);  // never closed: handles outlive callers
    if (library == nullptr) {
      const char* why = ::dlerror();
      a.error = absl::StrCat("cannot load ", kLibrary, " (Debian: libcurl4): ", why != nullptr ? why : "unknown");
      spdlog::error("{}", a.error);
      return a;
    }
    Find(library, "curl_global_init", &a.global_init, &a.error);
    Find(library, "curl_easy_init", &a.easy_init, &a.error);
    Find(library, "curl_easy_setopt", &a.easy_setopt, &a.error);
    Find(library, "curl_easy_perform", &a.easy_perform, &a.error);
    Find(library, "curl_easy_cleanup", &a.easy_cleanup, &a.error);
    Find(library, "curl_easy_reset", &a.easy_reset, &a.error);
    Find(library, "curl_easy_getinfo", &a.easy_getinfo, &a.error);
    Find(library, "curl_easy_strerror", &a.easy_strerror, &a.error);
    Find(library, "curl_slist_append", &a.slist_append, &a.error);
    Find(library, "curl_slist_free_all", &a.slist_free_all, &a.error);
    if (!a.error.empty()) spdlog::error("{}", a.error);
    return a;
  }();
  return api;
}

bool Loaded() { return Api().error.empty(); }

}  // namespace

absl::Status CurlReady() {
  if (Loaded()) return absl::OkStatus();
  return absl::FailedPreconditionError(Api().error);
}

}  // namespace assay

// curl.h declares curl_easy_setopt and curl_easy_getinfo with an enum before the `...`, and
// libcurl's own definitions call va_start on it just so; clang warns (-Wvarargs) that an enum is
// promoted. The enums are ints on every ABI Assay builds for.
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wvarargs"
#endif

// The functions of curl.h that Assay calls, with curl.h's own declarations. Without the library
// they fail the way libcurl itself reports failure (no handle, CURLE_FAILED_INIT).
extern "C" {

CURLcode curl_global_init(long flags) {
  return assay::Loaded() ? assay::Api().global_init(flags) : CURLE_FAILED_INIT;
}

CURL* curl_easy_init(void) { return assay::Loaded() ? assay::Api().easy_init() : nullptr; }

// The option's number says the type of its argument (curl.h's CURLOPTTYPE_* ranges), as libcurl's
// own curl_easy_setopt reads it.
CURLcode curl_easy_setopt(CURL* curl, CURLoption option, ...) {
  if (!assay::Loaded()) return CURLE_FAILED_INIT;
  const auto setopt = assay::Api().easy_setopt;
  va_list args;
  va_start(args, option);
  CURLcode code;
  if (option < CURLOPTTYPE_OBJECTPOINT) {
    code = setopt(curl, option, va_arg(args, long));
  } else if (option < CURLOPTTYPE_FUNCTIONPOINT) {
    code = setopt(curl, option, va_arg(args, void*));
  } else if (option < CURLOPTTYPE_OFF_T) {
    code = setopt(curl, option, va_arg(args, assay::AnyFunction));
  } else if (option < CURLOPTTYPE_BLOB) {
    code = setopt(curl, option, va_arg(args, curl_off_t));
  } else {
    code = setopt(curl, option, va_arg(args, void*));
  }
  va_end(args);
  return code;
}

CURLcode curl_easy_perform(CURL* curl) { return assay::Loaded() ? assay::Api().easy_perform(curl) : CURLE_FAILED_INIT; }

void curl_easy_cleanup(CURL* curl) {
  if (curl != nullptr && assay::Loaded()) assay::Api().easy_cleanup(curl);
}

void curl_easy_reset(CURL* curl) {
  if (curl != nullptr && assay::Loaded()) assay::Api().easy_reset(curl);
}

// Every CURLINFO_* takes a pointer to where the answer goes.
CURLcode curl_easy_getinfo(CURL* curl, CURLINFO info, ...) {
  if (!assay::Loaded()) return CURLE_FAILED_INIT;
  va_list args;
  va_start(args, info);
  void* out = va_arg(args, void*);
  va_end(args);
  return assay::Api().easy_getinfo(curl, info, out);
}

const char* curl_easy_strerror(CURLcode code) {
  return assay::Loaded() ? assay::Api().easy_strerror(code) : "libcurl is not loaded";
}

struct curl_slist* curl_slist_append(struct curl_slist* list, const char* text) {
  return assay::Loaded() ? assay::Api().slist_append(list, text) : nullptr;
}

void curl_slist_free_all(struct curl_slist* list) {
  if (list != nullptr && assay::Loaded()) assay::Api().slist_free_all(list);
}

}  // extern "C"

#if defined(__clang__)
#pragma clang diagnostic pop
#endif
