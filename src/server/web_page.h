// The page served at GET /: web/index.html, embedded at build time (see
// CMakeLists.txt) so the installed binary needs no data files.
#pragma once

#include <string_view>

namespace grok::server {

std::string_view web_page();

}  // namespace grok::server
