#include "common/s3/s3_xml.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace assay {

namespace {

// Appends `code` as UTF-8 (nothing for a code point XML does not allow).
void AppendUtf8(uint32_t code, std::string& out) {
  if (code == 0 || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return;
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code >> 18));
    out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}

// The entity `name` (between '&' and ';') appended to `out`; false when it is not one XML knows.
bool AppendEntity(absl::string_view name, std::string& out) {
  static constexpr std::pair<absl::string_view, char> kNamed[] = {
      {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
  for (const auto& [entity, c] : kNamed) {
    if (name == entity) {
      out += c;
      return true;
    }
  }
  if (name.size() < 2 || name[0] != '#') return false;
  uint32_t code = 0;
  const bool hex = name[1] == 'x' || name[1] == 'X';
  const absl::string_view digits = name.substr(hex ? 2 : 1);
  if (digits.empty() || digits.size() > 8) return false;
  const bool parsed = hex ? absl::SimpleHexAtoi(digits, &code) : absl::SimpleAtoi(digits, &code);
  if (!parsed) return false;
  AppendUtf8(code, out);
  return true;
}

// True when `xml[at]` starts the tag `name` exactly: "<name" followed by '>', '/' or white space.
bool TagStartsAt(absl::string_view xml, size_t at, absl::string_view name) {
  const size_t end = at + 1 + name.size();
  return end < xml.size() && xml.substr(at + 1, name.size()) == name &&
         (xml[end] == '>' || xml[end] == '/' || absl::ascii_isspace(static_cast<unsigned char>(xml[end])));
}

}  // namespace

std::string XmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string XmlUnescape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const size_t semicolon = text[i] == '&' ? text.find(';', i) : absl::string_view::npos;
    if (semicolon != absl::string_view::npos && semicolon - i <= 10 &&
        AppendEntity(text.substr(i + 1, semicolon - i - 1), out)) {
      i = semicolon;
      continue;
    }
    out += text[i];  // not an entity: kept as it is
  }
  return out;
}

std::vector<absl::string_view> XmlElements(absl::string_view xml, absl::string_view name) {
  std::vector<absl::string_view> found;
  const std::string close = absl::StrCat("</", name, ">");
  size_t at = 0;
  while ((at = xml.find('<', at)) != absl::string_view::npos) {
    if (!TagStartsAt(xml, at, name)) {
      ++at;
      continue;
    }
    const size_t tag_end = xml.find('>', at);
    if (tag_end == absl::string_view::npos) break;
    if (xml[tag_end - 1] == '/') {  // <name/>
      found.push_back(xml.substr(tag_end, 0));
      at = tag_end + 1;
      continue;
    }
    const size_t end = xml.find(close, tag_end + 1);
    if (end == absl::string_view::npos) break;  // unclosed: not an element
    found.push_back(xml.substr(tag_end + 1, end - tag_end - 1));
    at = end + close.size();
  }
  return found;
}

std::optional<std::string> XmlFirst(absl::string_view xml, absl::string_view name) {
  std::vector<absl::string_view> all = XmlElements(xml, name);
  if (all.empty()) return std::nullopt;
  return XmlUnescape(all.front());
}

std::optional<S3ErrorBody> ParseS3Error(absl::string_view xml) {
  std::vector<absl::string_view> errors = XmlElements(xml, "Error");
  if (errors.empty()) return std::nullopt;
  std::optional<std::string> code = XmlFirst(errors.front(), "Code");
  if (!code.has_value()) return std::nullopt;
  return S3ErrorBody{*code, XmlFirst(errors.front(), "Message").value_or("")};
}

absl::StatusOr<S3ListPage> ParseListObjectsV2(absl::string_view xml) {
  std::vector<absl::string_view> result = XmlElements(xml, "ListBucketResult");
  if (result.empty()) {
    return absl::InternalError(absl::StrCat("S3 list answer is no ListBucketResult: ", xml.substr(0, 200)));
  }
  S3ListPage page;
  for (absl::string_view contents : XmlElements(result.front(), "Contents")) {
    std::optional<std::string> key = XmlFirst(contents, "Key");
    std::optional<std::string> size = XmlFirst(contents, "Size");
    S3Object object;
    if (!key.has_value() || key->empty()) return absl::InternalError("S3 list answer has a <Contents> without a <Key>");
    if (!size.has_value() || !absl::SimpleAtoi(*size, &object.size) || object.size < 0) {
      return absl::InternalError(absl::StrCat("S3 list answer has no valid <Size> for key '", *key, "'"));
    }
    object.key = std::move(*key);
    page.objects.push_back(std::move(object));
  }
  page.truncated = XmlFirst(result.front(), "IsTruncated").value_or("false") == "true";
  if (page.truncated) {
    page.next_token = XmlFirst(result.front(), "NextContinuationToken").value_or("");
    if (page.next_token.empty()) {
      return absl::InternalError("S3 list answer is truncated but has no <NextContinuationToken>");
    }
  }
  return page;
}

absl::StatusOr<std::string> ParseUploadId(absl::string_view xml) {
  std::optional<std::string> id = XmlFirst(xml, "UploadId");
  if (!id.has_value() || id->empty()) {
    return absl::InternalError(absl::StrCat("S3 multipart answer has no <UploadId>: ", xml.substr(0, 200)));
  }
  return *id;
}

absl::StatusOr<std::vector<S3DeleteError>> ParseDeleteResult(absl::string_view xml) {
  std::vector<absl::string_view> result = XmlElements(xml, "DeleteResult");
  if (result.empty()) {
    return absl::InternalError(absl::StrCat("S3 delete answer is no DeleteResult: ", xml.substr(0, 200)));
  }
  std::vector<S3DeleteError> errors;
  for (absl::string_view error : XmlElements(result.front(), "Error")) {
    errors.push_back({XmlFirst(error, "Key").value_or(""), XmlFirst(error, "Code").value_or("Unknown"),
                      XmlFirst(error, "Message").value_or("")});
  }
  return errors;
}

std::string DeleteRequestBody(const std::vector<std::string>& keys) {
  std::string body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete><Quiet>true</Quiet>";
  for (const std::string& key : keys) absl::StrAppend(&body, "<Object><Key>", XmlEscape(key), "</Key></Object>");
  body += "</Delete>";
  return body;
}

std::string CompleteMultipartBody(const std::vector<S3Part>& parts) {
  std::string body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><CompleteMultipartUpload>";
  for (const S3Part& part : parts) {
    absl::StrAppend(&body, "<Part><PartNumber>", part.number, "</PartNumber><ETag>", XmlEscape(part.etag),
                    "</ETag></Part>");
  }
  body += "</CompleteMultipartUpload>";
  return body;
}

}  // namespace assay
