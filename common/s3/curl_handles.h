// Owners of libcurl's handles: an easy handle and a header list, freed with the calls libcurl asks for.
#pragma once

#include <curl/curl.h>

#include <memory>

namespace assay {

struct CurlEasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct CurlSlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;
using CurlHeaders = std::unique_ptr<curl_slist, CurlSlistDeleter>;

}  // namespace assay
