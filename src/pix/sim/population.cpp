#include "pix/sim/population.hpp"

#include <algorithm>
#include <array>
#include <unordered_set>
#include <utility>

#include "pix/sim/key_generator.hpp"

namespace pix::sim {
namespace {

// Sub-stream of the seed that populations draw from; payments use others, so the same seed can
// drive both without the two sequences being correlated.
constexpr std::uint64_t kPopulationStream = 1;
// Draws of a key that is already taken before an e-mail is made unique by other means.
constexpr int kMaxRedraws = 16;

struct Share {
  domain::KeyType type;
  int percent;
};
constexpr std::array<Share, 5> kShares = {{{domain::KeyType::kCpf, kCpfPercent},
                                           {domain::KeyType::kCnpj, kCnpjPercent},
                                           {domain::KeyType::kPhone, kPhonePercent},
                                           {domain::KeyType::kEmail, kEmailPercent},
                                           {domain::KeyType::kEvp, kEvpPercent}}};
static_assert(kCpfPercent + kCnpjPercent + kPhonePercent + kEmailPercent + kEvpPercent == 100);

// How many of `n` accounts get each type: floor of the share, and the accounts left over go to
// the largest remainders, so the counts add up to n and each is within one of its share.
std::array<std::size_t, kShares.size()> type_counts(std::size_t n) {
  std::array<std::size_t, kShares.size()> counts{};
  std::array<std::pair<std::size_t, std::size_t>, kShares.size()> remainders{};  // (remainder, index)
  std::size_t assigned = 0;
  for (std::size_t i = 0; i < kShares.size(); ++i) {
    const std::size_t scaled = n * static_cast<std::size_t>(kShares[i].percent);
    counts[i] = scaled / 100;
    remainders[i] = {scaled % 100, i};
    assigned += counts[i];
  }
  // Larger remainder first; on a tie the type listed first.
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (std::size_t k = 0; assigned < n; ++k, ++assigned) ++counts[remainders[k].second];
  return counts;
}

}  // namespace

std::string account_id(std::size_t number) {
  std::string digits = std::to_string(number);
  if (digits.size() < 4) digits.insert(0, 4 - digits.size(), '0');
  return "pix-" + digits;
}

std::vector<Account> make_population(std::size_t n, std::uint64_t seed) {
  Rng rng(derive_seed(seed, kPopulationStream));

  std::vector<domain::KeyType> types;
  types.reserve(n);
  const auto counts = type_counts(n);
  for (std::size_t i = 0; i < kShares.size(); ++i) types.insert(types.end(), counts[i], kShares[i].type);
  // Fisher-Yates with our own draws, so the shuffle is the same with any standard library.
  for (std::size_t i = n; i > 1; --i) std::swap(types[i - 1], types[uniform_below(rng, i)]);

  std::vector<Account> accounts;
  accounts.reserve(n);
  std::unordered_set<std::string> taken;  // a key names one account in the DICT
  taken.reserve(n);
  std::size_t cnpjs = 0;
  for (std::size_t i = 0; i < n; ++i) {
    Account a;
    a.id = account_id(i + 1);
    a.key_type = types[i];
    a.company = a.key_type == domain::KeyType::kCnpj;
    // Alternate so that exactly half (rounded down) of the CNPJs are alphanumeric.
    const bool alphanumeric = a.company && cnpjs++ % 2 == 1;
    for (int attempt = 0;; ++attempt) {
      a.key = a.company ? make_cnpj(rng, alphanumeric) : make_key(rng, a.key_type);
      if (attempt >= kMaxRedraws && a.key_type == domain::KeyType::kEmail) {
        // The names give a few million addresses: a population of tens of millions could run out
        // of them. The account number makes the address unique (no drawn address ends ".<digits>").
        a.key.insert(a.key.find('@'), "." + std::to_string(i + 1));
      }
      if (taken.insert(a.key).second) break;
    }
    accounts.push_back(std::move(a));
  }
  return accounts;
}

}  // namespace pix::sim
