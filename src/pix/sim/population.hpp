#pragma once
/// @file The simulator's accounts: `pix-0001` ... `pix-NNNN`, the names settlement funds with
/// `--population N`, each holding one valid PIX key.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "pix/domain/pix_keys.hpp"

namespace pix::sim {

/// @brief One simulated account holder.
struct Account {
  std::string id;   ///< the ledger account: "pix-0042"
  std::string key;  ///< its PIX key, valid for `key_type`, unique in the population
  domain::KeyType key_type = domain::KeyType::kEvp;
  bool company = false;  ///< a company (PJ, holds the CNPJ keys) rather than an individual (PF)
};

/// @brief Shares of each key type in a population, in percent. Companies are exactly the CNPJ
/// holders (10%); half of their CNPJs are the new alphanumeric ones.
inline constexpr int kCpfPercent = 30;
inline constexpr int kCnpjPercent = 10;
inline constexpr int kPhonePercent = 25;
inline constexpr int kEmailPercent = 20;
inline constexpr int kEvpPercent = 15;

/// @brief The id of the `number`-th account (from 1): "pix-0001", ..., "pix-9999", "pix-10000".
/// The same "pix-%04d" that settlement opens with `--population`.
std::string account_id(std::size_t number);

/// @brief `n` accounts, `pix-0001` to `pix-<n>` in that order.
///
/// The key types follow the shares above exactly (rounded by largest remainder) and are spread
/// over the accounts at random; keys are drawn from `seed` and never repeat. The same `n` and
/// `seed` always give the same population, and a larger `n` with the same seed is not an
/// extension of a smaller one (the key types are shuffled over all `n`).
std::vector<Account> make_population(std::size_t n, std::uint64_t seed);

}  // namespace pix::sim
