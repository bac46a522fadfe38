// curl_loader: libcurl is not among the programs' libraries at start, is loaded on first use, and
// each function Assay calls reaches it with its arguments whole, whatever their type (curl.h's
// options take a long, a pointer, a function or a curl_off_t).
#include "common/s3/curl_loader.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <string>

namespace assay::testing {
namespace {

size_t Discard(char*, size_t size, size_t count, void*) { return size * count; }

TEST(CurlLoaderTest, LibcurlIsLoadedOnFirstUseNotAtStart) {
  // Nothing in this program has called libcurl yet: it is not mapped.
  EXPECT_EQ(::dlopen("libcurl.so.4", RTLD_NOW | RTLD_NOLOAD), nullptr) << "libcurl was loaded at start";
  ASSERT_TRUE(CurlReady().ok()) << CurlReady();
  void* loaded = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_NOLOAD);
  EXPECT_NE(loaded, nullptr);
  if (loaded != nullptr) ::dlclose(loaded);  // drops the reference NOLOAD took
}

TEST(CurlLoaderTest, EveryKindOfOptionAndInfoReachesLibcurl) {
  ASSERT_EQ(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
  CURL* curl = curl_easy_init();
  ASSERT_NE(curl, nullptr);
  char error[CURL_ERROR_SIZE] = {0};
  EXPECT_EQ(curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L), CURLE_OK);                          // a long
  EXPECT_EQ(curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error), CURLE_OK);                    // a pointer
  EXPECT_EQ(curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Discard), CURLE_OK);                // a function
  EXPECT_EQ(curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, curl_off_t{1} << 40), CURLE_OK);  // a curl_off_t
  // A file: URL needs no network; what libcurl reports back shows the options arrived.
  EXPECT_EQ(curl_easy_setopt(curl, CURLOPT_URL, "file:///nonexistent/assay-curl-loader-test"), CURLE_OK);
  EXPECT_EQ(curl_easy_perform(curl), CURLE_FILE_COULDNT_READ_FILE);
  EXPECT_NE(std::string(error).find("assay-curl-loader-test"), std::string::npos) << error;
  char* url = nullptr;
  ASSERT_EQ(curl_easy_getinfo(curl, CURLINFO_EFFECTIVE_URL, &url), CURLE_OK);
  EXPECT_STREQ(url, "file:///nonexistent/assay-curl-loader-test");
  EXPECT_STRNE(curl_easy_strerror(CURLE_FILE_COULDNT_READ_FILE), "libcurl is not loaded");
  curl_slist* headers = curl_slist_append(nullptr, "X-Assay: 1");
  ASSERT_NE(headers, nullptr);
  curl_slist_free_all(headers);
  curl_easy_reset(curl);
  curl_easy_cleanup(curl);
}

}  // namespace
}  // namespace assay::testing
