#include "s3/parsers.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <pugixml.hpp>

#include "sigv4/sigv4.hpp"

namespace assetmv::s3 {

namespace {

// Element names compare without a namespace prefix: RGW and AWS use a default
// namespace, but a proxy may rewrite it with a prefix.
bool name_is(const pugi::xml_node& n, const char* name) {
  const char* full = n.name();
  const char* colon = std::strrchr(full, ':');
  return std::strcmp(colon != nullptr ? colon + 1 : full, name) == 0;
}

pugi::xml_node child(const pugi::xml_node& parent, const char* name) {
  for (auto c = parent.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_element && name_is(c, name)) return c;
  }
  return {};
}

// A view into the document, valid while it lives: for the fields of a listing
// that are parsed or copied once into place (a listing has 1,000 entries).
std::string_view text_view(const pugi::xml_node& parent, const char* name) { return child(parent, name).child_value(); }
std::string text(const pugi::xml_node& parent, const char* name) { return std::string(text_view(parent, name)); }

Error malformed(std::string_view what, std::string_view detail) {
  return Error{ErrorKind::Retryable, "MalformedResponse", fmt::format("{}: {}", what, detail), 0};
}

// Parses into doc; a truncated or garbled body is retryable (it happens when a
// connection drops mid-body), not fatal.
Result<pugi::xml_node> load(pugi::xml_document& doc, std::string_view body, std::string_view what) {
  const auto res = doc.load_buffer(body.data(), body.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!res) return tl::unexpected(malformed(what, fmt::format("invalid XML ({})", res.description())));
  auto root = doc.document_element();
  if (!root) return tl::unexpected(malformed(what, "empty document"));
  return root;
}

Error error_from_body(const pugi::xml_node& root, int status) {
  ErrorBody b{text(root, "Code"), text(root, "Message"), text(root, "Resource"), text(root, "RequestId"),
              text(root, "HostId")};
  Error e;
  e.request_id = b.request_id;
  e.host_id = b.host_id;
  e.code = b.code.empty() ? "UnknownError" : b.code;
  e.kind = classify_http(0, status, e.code);
  e.message = b.message.empty() ? "the server reported an error" : b.message;
  e.http_status = status;
  return e;
}

// Loads an answer's document: an <Error> root (S3 may send one with a 200)
// comes back as that Error, and a root other than `roots` (when given) as a
// malformed response.
Result<pugi::xml_node> load_answer(pugi::xml_document& doc, std::string_view body, std::string_view what,
                                   std::initializer_list<const char*> roots = {}) {
  auto root = load(doc, body, what);
  if (!root) return root;
  if (name_is(*root, "Error")) return tl::unexpected(error_from_body(*root, 200));
  if (roots.size() != 0 && std::none_of(roots.begin(), roots.end(), [&](const char* r) { return name_is(*root, r); }))
    return tl::unexpected(malformed(what, fmt::format("unexpected root <{}>", root->name())));
  return root;
}

bool decode_into(std::string_view encoded, std::string& out) { return sigv4::uri_decode(encoded, out); }

}  // namespace

namespace {
std::string_view unquoted(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
  if (etag.starts_with("&quot;") && etag.ends_with("&quot;") && etag.size() >= 12)
    etag = etag.substr(6, etag.size() - 12);
  return etag;
}
}  // namespace

std::string unquote_etag(std::string_view etag) { return std::string(unquoted(etag)); }

bool etag_equal(std::string_view a, std::string_view b) {
  const std::string_view x = unquoted(a);
  const std::string_view y = unquoted(b);
  return x.size() == y.size() && std::equal(x.begin(), x.end(), y.begin(), [](char p, char q) {
           return std::tolower(static_cast<unsigned char>(p)) == std::tolower(static_cast<unsigned char>(q));
         });
}

std::string multipart_etag(const std::vector<Md5>& part_md5s) {
  std::string joined;
  joined.reserve(part_md5s.size() * sizeof(Md5));
  for (const auto& m : part_md5s) joined += as_view(m);
  return fmt::format("{}-{}", hex(md5(joined)), part_md5s.size());
}

bool etag_is_md5(std::string_view etag) {
  if (etag.size() != 32) return false;
  for (char c : etag) {
    const bool hexdigit = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hexdigit) return false;
  }
  return true;
}

std::optional<ErrorBody> parse_error_body(std::string_view body) {
  pugi::xml_document doc;
  if (!doc.load_buffer(body.data(), body.size(), pugi::parse_default, pugi::encoding_utf8)) return std::nullopt;
  auto root = doc.document_element();
  if (!root || !name_is(root, "Error")) return std::nullopt;
  return ErrorBody{text(root, "Code"),      text(root, "Message"), text(root, "Resource"),
                   text(root, "RequestId"), text(root, "HostId"),  text(root, "Region")};
}

Result<ListPage> parse_list_objects_v2(std::string_view body) {
  pugi::xml_document doc;
  auto root = load_answer(doc, body, "ListObjectsV2", {"ListBucketResult"});
  if (!root) return tl::unexpected(root.error());
  const bool url_encoded = text(*root, "EncodingType") == "url";
  ListPage page;
  page.truncated = text(*root, "IsTruncated") == "true";
  page.next_continuation_token = text(*root, "NextContinuationToken");
  for (auto c = root->first_child(); c; c = c.next_sibling()) {
    if (name_is(c, "Contents")) {
      ObjectEntry e;
      const std::string_view raw_key = text_view(c, "Key");
      if (url_encoded) {
        if (!decode_into(raw_key, e.key))
          return tl::unexpected(malformed("ListObjectsV2", "bad percent-encoding in a key"));
      } else {
        e.key = raw_key;
      }
      e.etag = unquote_etag(text_view(c, "ETag"));
      const std::string_view size = text_view(c, "Size");
      auto [ptr, ec] = std::from_chars(size.data(), size.data() + size.size(), e.size);
      if (ec != std::errc() || ptr != size.data() + size.size())
        return tl::unexpected(malformed("ListObjectsV2", fmt::format("bad <Size> '{}'", size)));
      e.last_modified = text_view(c, "LastModified");
      e.storage_class = text_view(c, "StorageClass");
      page.objects.push_back(std::move(e));
    } else if (name_is(c, "CommonPrefixes")) {
      std::string p = text(c, "Prefix");
      if (url_encoded) {
        std::string decoded;
        if (!decode_into(p, decoded))
          return tl::unexpected(malformed("ListObjectsV2", "bad percent-encoding in a prefix"));
        p = std::move(decoded);
      }
      page.common_prefixes.push_back(std::move(p));
    }
  }
  if (page.truncated && page.next_continuation_token.empty())
    return tl::unexpected(malformed("ListObjectsV2", "truncated page without a continuation token"));
  return page;
}

namespace {

// The pieces of scan_copy_result's one pass, each consuming from `b` what it
// read, and giving up (nullopt or false) on anything the DOM might read
// otherwise.
void skip_space(std::string_view& b) {
  while (!b.empty() && (b.front() == ' ' || b.front() == '\t' || b.front() == '\n')) b.remove_prefix(1);
}
bool is_letter(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool is_name_char(char c) { return is_letter(c) || (c >= '0' && c <= '9'); }

// The XML declaration, if any, and the root's open tag with its attributes
// (xmlns="..."): name="value", no entity. The root's name.
std::optional<std::string_view> scan_root_open(std::string_view& b) {
  skip_space(b);
  if (b.starts_with("<?xml ")) {
    const auto end = b.find("?>");
    if (end == std::string_view::npos) return std::nullopt;
    b.remove_prefix(end + 2);
    skip_space(b);
  }
  std::string_view root;
  for (std::string_view r : {"CopyObjectResult", "CopyPartResult"}) {
    if (b.size() > r.size() + 1 && b[0] == '<' && b.substr(1, r.size()) == r &&
        (b[r.size() + 1] == '>' || b[r.size() + 1] == ' '))
      root = r;
  }
  if (root.empty()) return std::nullopt;
  b.remove_prefix(root.size() + 1);
  while (b.size() > 1 && b.front() == ' ') {
    b.remove_prefix(1);
    std::size_t n = 0;
    while (n < b.size() && (is_name_char(b[n]) || b[n] == ':')) ++n;
    if (n == 0 || !is_letter(b[0]) || n + 2 > b.size() || b[n] != '=' || (b[n + 1] != '"' && b[n + 1] != '\''))
      return std::nullopt;
    const auto end = b.find(b[n + 1], n + 2);
    if (end == std::string_view::npos ||
        b.substr(n + 2, end - n - 2).find_first_of("<&\r\n\t") != std::string_view::npos)
      return std::nullopt;
    b.remove_prefix(end + 1);
  }
  if (b.empty() || b.front() != '>') return std::nullopt;
  b.remove_prefix(1);  // '>'
  return root;
}

// One child element <Name>text</Name>, no nesting: its name and raw text.
std::optional<std::pair<std::string_view, std::string_view>> scan_child(std::string_view& b) {
  std::size_t n = 1;
  while (n < b.size() && is_name_char(b[n])) ++n;
  if (n == 1 || !is_letter(b[1]) || n >= b.size() || b[n] != '>') return std::nullopt;
  const std::string_view name = b.substr(1, n - 1);
  b.remove_prefix(n + 1);
  const auto close = b.find('<');
  if (close == std::string_view::npos) return std::nullopt;
  const std::string_view text = b.substr(0, close);
  if (text.find('\r') != std::string_view::npos) return std::nullopt;  // the DOM normalises line ends
  b.remove_prefix(close);
  if (b.size() < name.size() + 3 || b[1] != '/' || b.substr(2, name.size()) != name || b[name.size() + 2] != '>')
    return std::nullopt;
  b.remove_prefix(name.size() + 3);
  return std::pair{name, text};
}

// The root's children up to its close tag, and nothing after it: the first
// ETag's raw text.
std::optional<std::string_view> scan_children(std::string_view& b, std::string_view root) {
  std::optional<std::string_view> etag;
  for (;;) {
    skip_space(b);
    if (b.size() < 3 || b[0] != '<') return std::nullopt;
    if (b[1] == '/') {
      b.remove_prefix(2);
      if (!b.starts_with(root) || b.size() < root.size() + 1 || b[root.size()] != '>') return std::nullopt;
      b.remove_prefix(root.size() + 1);
      skip_space(b);
      if (!b.empty()) return std::nullopt;
      return etag;
    }
    const auto child = scan_child(b);
    if (!child) return std::nullopt;
    if (child->first == "ETag" && !etag)
      etag = child->second;
    else if (child->second.find('&') != std::string_view::npos)
      return std::nullopt;
  }
}

// &quot; is the only entity taken here; the DOM decodes the rest.
std::optional<std::string> decode_quotes(std::string_view t) {
  std::string raw;
  raw.reserve(t.size());
  while (!t.empty()) {
    if (t.front() != '&') {
      raw.push_back(t.front());
      t.remove_prefix(1);
    } else if (t.starts_with("&quot;")) {
      raw.push_back('"');
      t.remove_prefix(6);
    } else {
      return std::nullopt;
    }
  }
  return raw;
}

}  // namespace

std::optional<std::string> scan_copy_result(std::string_view b) {
  if (b.find('\0') != std::string_view::npos) return std::nullopt;  // the DOM stops at a NUL
  const auto root = scan_root_open(b);
  if (!root) return std::nullopt;
  const auto etag = scan_children(b, *root);
  // A text of spaces only is no text to the DOM (it drops whitespace-only text).
  if (!etag || etag->find_first_not_of(" \t\n") == std::string_view::npos) return std::nullopt;
  const auto raw = decode_quotes(*etag);
  if (!raw) return std::nullopt;
  auto unquoted = unquote_etag(*raw);
  if (unquoted.empty()) return std::nullopt;  // the DOM path says why
  return unquoted;
}

Result<std::string> parse_copy_result_dom(std::string_view body) {
  pugi::xml_document doc;
  auto root = load_answer(doc, body, "CopyObject", {"CopyObjectResult", "CopyPartResult"});
  if (!root) return tl::unexpected(root.error());
  auto etag = unquote_etag(text(*root, "ETag"));
  if (etag.empty()) return tl::unexpected(malformed("CopyObject", "no ETag in the result"));
  return etag;
}

Result<std::string> parse_copy_result(std::string_view body) {
  if (auto etag = scan_copy_result(body)) return std::move(*etag);
  return parse_copy_result_dom(body);
}

Result<DeleteResult> parse_delete_result(std::string_view body) {
  pugi::xml_document doc;
  auto root = load_answer(doc, body, "DeleteObjects", {"DeleteResult"});
  if (!root) return tl::unexpected(root.error());
  DeleteResult r;
  for (auto c = root->first_child(); c; c = c.next_sibling()) {
    if (name_is(c, "Deleted")) {
      r.deleted.emplace_back(text(c, "Key"));
    } else if (name_is(c, "Error")) {
      r.failed.push_back({text(c, "Key"), text(c, "Code"), text(c, "Message")});
    }
  }
  return r;
}

Result<std::string> parse_initiate_multipart(std::string_view body) {
  pugi::xml_document doc;
  auto root = load_answer(doc, body, "CreateMultipartUpload");
  if (!root) return tl::unexpected(root.error());
  auto id = text(*root, "UploadId");
  if (id.empty()) return tl::unexpected(malformed("CreateMultipartUpload", "no UploadId"));
  return id;
}

Result<std::vector<Tag>> parse_tagging(std::string_view body) {
  // Ceph RGW 16 answers an object without tags with an empty 200.
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return std::vector<Tag>{};
  pugi::xml_document doc;
  auto root = load_answer(doc, body, "GetObjectTagging");
  if (!root) return tl::unexpected(root.error());
  if (!name_is(*root, "Tagging")) return tl::unexpected(malformed("GetObjectTagging", "no Tagging element"));
  std::vector<Tag> tags;
  for (auto set : root->children()) {
    if (!name_is(set, "TagSet")) continue;
    for (auto t : set.children()) {
      if (!name_is(t, "Tag")) continue;
      Tag tag{text(t, "Key"), text(t, "Value")};
      if (tag.key.empty()) return tl::unexpected(malformed("GetObjectTagging", "a Tag without a Key"));
      tags.push_back(std::move(tag));
    }
  }
  return tags;
}

Result<std::string> parse_ownership_controls(std::string_view body) {
  pugi::xml_document doc;
  auto root = load_answer(doc, body, "GetBucketOwnershipControls", {"OwnershipControls"});
  if (!root) return tl::unexpected(root.error());
  for (auto rule : root->children())
    if (name_is(rule, "Rule")) return text(rule, "ObjectOwnership");
  return tl::unexpected(malformed("GetBucketOwnershipControls", "no Rule"));
}

Result<std::string> parse_versioning(std::string_view body) {
  pugi::xml_document doc;
  auto root = load_answer(doc, body, "GetBucketVersioning", {"VersioningConfiguration"});
  if (!root) return tl::unexpected(root.error());
  return text(*root, "Status");
}

Result<std::string> parse_complete_multipart(std::string_view body) {
  pugi::xml_document doc;
  auto root = load_answer(doc, body, "CompleteMultipartUpload");
  if (!root) return tl::unexpected(root.error());
  auto etag = unquote_etag(text(*root, "ETag"));
  if (etag.empty()) return tl::unexpected(malformed("CompleteMultipartUpload", "no ETag"));
  return etag;
}

}  // namespace assetmv::s3
