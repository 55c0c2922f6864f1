// pix-token: the local development issuer. `init` makes a signing key and the JWKS the gateway
// verifies with; `issue` prints one bearer token. For development and tests, not production.
#include <CLI/CLI.hpp>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "pix/domain/topics.hpp"
#include "pix/security/jwt.hpp"
#include "pix/security/token_issuer.hpp"

namespace {

namespace fs = std::filesystem;
using pix::security::TokenIssuer;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

std::string topic_list() {
  std::string out;
  for (const auto t : pix::domain::kTopicNames) out += (out.empty() ? "" : ", ") + std::string(t);
  return out;
}

int run_init(const fs::path& dir) {
  const fs::path pem = dir / "issuer.pem";
  const fs::path jwks = dir / "jwks.json";
  if (!fs::exists(dir)) {
    fs::create_directories(dir);
    fs::permissions(dir, fs::perms::owner_all);  // the key's directory is nobody else's business
  }
  const bool had_key = fs::exists(pem);
  if (!had_key && fs::exists(jwks)) {
    // A new key could never be in that JWKS: stop before creating anything.
    std::fprintf(stderr,
                 "pix-token: %s exists but %s does not: restore the key, or remove the JWKS and run init again\n",
                 jwks.c_str(), pem.c_str());
    return kExitFailure;
  }
  const TokenIssuer issuer = had_key ? TokenIssuer::load_pem_file(pem.string()) : TokenIssuer::generate_es256();
  if (!had_key) issuer.save_pem_file(pem.string());
  const bool had_jwks = fs::exists(jwks);
  if (had_jwks) {
    // Kept as it is (it may hold other keys during a rotation), but it must hold this one.
    std::FILE* f = std::fopen(jwks.c_str(), "rb");
    std::string text;
    if (f != nullptr) {
      std::array<char, 4096> chunk{};
      for (std::size_t n; (n = std::fread(chunk.data(), 1, chunk.size(), f)) > 0;) text.append(chunk.data(), n);
      std::fclose(f);
    }
    const auto parsed = pix::security::parse_jwks(text);
    if (!parsed || parsed.keys->find(issuer.kid()) == nullptr) {
      std::fprintf(stderr,
                   "pix-token: %s does not hold the public key of %s (kid %s): tokens from this key would be "
                   "refused. Remove it and run init again to write it from the key.\n",
                   jwks.c_str(), pem.c_str(), issuer.kid().c_str());
      return kExitFailure;
    }
  } else {
    issuer.save_jwks_file(jwks.string());
  }
  std::printf("signing key: %s (%s, kid %s)\n", pem.c_str(), had_key ? "kept" : "created", issuer.kid().c_str());
  std::printf("jwks:        %s (%s)\n", jwks.c_str(), had_jwks ? "kept" : "created");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pix-token: development bearer tokens (ES256) for the pix-api gateway"};
  app.require_subcommand(1);

  std::string dir;
  auto* init = app.add_subcommand("init", "create DIR/issuer.pem (mode 0600) and DIR/jwks.json if missing");
  init->add_option("--dir", dir, "directory of the signing key and its JWKS")->required();

  pix::security::TokenRequest request;
  std::vector<std::string> topics{std::string(pix::domain::topic_name(pix::domain::kDefaultTopic))};
  std::string ttl = "1h";
  auto* issue = app.add_subcommand("issue", "print one token signed with DIR/issuer.pem");
  issue->add_option("--dir", dir, "directory of the signing key (made by init)")->required();
  issue->add_option("--subject", request.subject, "sub claim: who the token is for")->capture_default_str();
  issue->add_option("--scope", topics, "topic the token may publish to (repeatable; written as publish:<topic>)")
      ->delimiter(',')
      ->capture_default_str();
  issue->add_option("--ttl", ttl, "lifetime: 30s, 15m, 1h, 2d (at most 366d)")->capture_default_str();
  issue->add_option("--issuer", request.issuer, "iss claim (must be the issuer the gateway accepts)")
      ->capture_default_str();
  issue->add_option("--audience", request.audience, "aud claim (must be an audience the gateway accepts)")
      ->capture_default_str();

  CLI11_PARSE(app, argc, argv);

  try {
    if (*init) return run_init(dir);

    const auto lifetime = pix::security::parse_ttl(ttl);
    if (!lifetime) {
      std::fprintf(stderr, "pix-token: --ttl '%s': expected a number and s, m, h or d (30s, 15m, 1h, 2d)\n",
                   ttl.c_str());
      return kExitUsage;
    }
    request.ttl = *lifetime;
    for (const auto& topic : topics) {
      auto scope = pix::security::scope_for_topic(topic);
      if (!scope) {
        std::fprintf(stderr, "pix-token: --scope '%s' is not a PIX topic (one of: %s)\n", topic.c_str(),
                     topic_list().c_str());
        return kExitUsage;
      }
      request.scopes.push_back(std::move(*scope));
    }
    const std::pair<const char*, const std::string*> required[] = {
        {"--subject", &request.subject}, {"--issuer", &request.issuer}, {"--audience", &request.audience}};
    for (const auto& [flag, value] : required) {
      if (value->empty()) {
        std::fprintf(stderr, "pix-token: %s must not be empty\n", flag);
        return kExitUsage;
      }
    }
    const fs::path pem = fs::path(dir) / "issuer.pem";
    if (!fs::exists(pem)) {
      std::fprintf(stderr, "pix-token: no signing key at %s; run `pix-token init --dir %s` first\n", pem.c_str(),
                   dir.c_str());
      return kExitFailure;
    }
    const TokenIssuer issuer = TokenIssuer::load_pem_file(pem.string());
    std::printf("%s\n", issuer.sign(request).c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pix-token: %s\n", e.what());
    return kExitFailure;
  }
}
