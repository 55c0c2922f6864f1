#include "pix/sim/key_generator.hpp"

#include <array>
#include <cmath>
#include <numbers>
#include <string_view>

namespace pix::sim {
namespace {

constexpr std::string_view kDigits = "0123456789";
constexpr std::string_view kAlphanumerics = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
constexpr std::string_view kHex = "0123456789abcdef";

// Every area code (DDD) in use in Brazil; none has a 0, as the key pattern [1-9]{2} requires.
constexpr std::array<std::string_view, 67> kAreaCodes = {
    "11", "12", "13", "14", "15", "16", "17", "18", "19", "21", "22", "24", "27", "28", "31", "32", "33",
    "34", "35", "37", "38", "41", "42", "43", "44", "45", "46", "47", "48", "49", "51", "53", "54", "55",
    "61", "62", "63", "64", "65", "66", "67", "68", "69", "71", "73", "74", "75", "77", "79", "81", "82",
    "83", "84", "85", "86", "87", "88", "89", "91", "92", "93", "94", "95", "96", "97", "98", "99"};

// Without accents: an e-mail key is plain ASCII.
constexpr std::array<std::string_view, 32> kFirstNames = {
    "ana",      "maria",    "joao",    "jose",    "pedro",   "lucas",   "gabriel", "juliana",
    "fernanda", "carlos",   "paulo",   "rafael",  "beatriz", "camila",  "bruno",   "larissa",
    "mateus",   "leticia",  "gustavo", "amanda",  "felipe",  "mariana", "thiago",  "aline",
    "rodrigo",  "patricia", "diego",   "vanessa", "marcos",  "luana",   "heitor",  "helena"};
constexpr std::array<std::string_view, 24> kSurnames = {
    "silva",  "santos",    "oliveira", "souza",   "rodrigues", "ferreira", "alves",      "pereira",
    "lima",   "gomes",     "costa",    "ribeiro", "martins",   "carvalho", "almeida",    "lopes",
    "soares", "fernandes", "vieira",   "barbosa", "rocha",     "dias",     "nascimento", "moreira"};
// Weighted by repetition: most Brazilians' addresses are at a handful of providers.
constexpr std::array<std::string_view, 12> kMailDomains = {"gmail.com",   "gmail.com",   "gmail.com",   "gmail.com",
                                                           "hotmail.com", "hotmail.com", "outlook.com", "yahoo.com.br",
                                                           "uol.com.br",  "bol.com.br",  "icloud.com",  "terra.com.br"};

char pick(Rng& rng, std::string_view from) {
  return from[uniform_below(rng, from.size())];
}

template <std::size_t N>
std::string_view pick(Rng& rng, const std::array<std::string_view, N>& from) {
  return from[uniform_below(rng, N)];
}

std::string random_chars(Rng& rng, std::string_view from, std::size_t n) {
  std::string out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out += pick(rng, from);
  return out;
}

bool all_same(std::string_view s) {
  return s.find_first_not_of(s.front()) == std::string_view::npos;
}

// The CPF check digit over `digits` with weights size+1 .. 2.
char cpf_check_digit(std::string_view digits) {
  int sum = 0;
  int weight = static_cast<int>(digits.size()) + 1;
  for (char c : digits) sum += (c - '0') * weight--;
  return static_cast<char>('0' + (sum * 10 % 11) % 10);
}

// The CNPJ check digit: a character is worth its ASCII code - 48 (A = 17 ... Z = 42), weights
// cycle 2..9 from the right.
char cnpj_check_digit(std::string_view chars) {
  int sum = 0;
  int weight = 2;
  for (auto it = chars.rbegin(); it != chars.rend(); ++it) {
    sum += (*it - '0') * weight;
    weight = weight == 9 ? 2 : weight + 1;
  }
  const int r = sum % 11;
  return static_cast<char>('0' + (r < 2 ? 0 : 11 - r));
}

// `d` replaced by another digit, so that a check digit is certainly wrong.
char other_digit(Rng& rng, char d) {
  return static_cast<char>('0' + (d - '0' + 1 + static_cast<int>(uniform_below(rng, 9))) % 10);
}

std::string numeric_suffix(Rng& rng) {
  // Two digits (a birth year's end) or four (a full year), as people pick them.
  return chance(rng, 0.5) ? random_chars(rng, kDigits, 2) : std::to_string(1960 + uniform_below(rng, 50));
}

std::string email_local_part(Rng& rng) {
  const std::string first(pick(rng, kFirstNames));
  const std::string last(pick(rng, kSurnames));
  switch (uniform_below(rng, 5)) {
    case 0:
      return first + "." + last + numeric_suffix(rng);
    case 1:
      return first + last + numeric_suffix(rng);
    case 2:
      return first + "_" + last + random_chars(rng, kDigits, 3);
    case 3:
      return first + "." + pick(rng, "abcdefghijlmnoprstv") + "." + last + random_chars(rng, kDigits, 2);
    default:
      return first + numeric_suffix(rng) + random_chars(rng, kDigits, 2);
  }
}

std::string uppercase(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}

std::string lowercase(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

bool has_letter(std::string_view s) {
  return s.find_first_not_of(kDigits) != std::string_view::npos;
}

}  // namespace

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) noexcept {
  std::uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t uniform_below(Rng& rng, std::uint64_t n) {
  // Values below 2^64 mod n would make the low residues more likely: draw again (rarely needed).
  const std::uint64_t threshold = (0 - n) % n;
  for (;;) {
    const std::uint64_t x = rng();
    if (x >= threshold) return x % n;
  }
}

double uniform_unit(Rng& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

bool chance(Rng& rng, double p) {
  return uniform_unit(rng) < p;
}

double standard_normal(Rng& rng) {
  const double u1 = 1.0 - uniform_unit(rng);  // (0, 1]: log() stays finite
  const double u2 = uniform_unit(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

std::string make_cpf(Rng& rng) {
  std::string cpf;
  do {
    cpf = random_chars(rng, kDigits, 9);
  } while (all_same(cpf));  // 111.111.111-11 and the like pass the arithmetic but are never issued
  cpf += cpf_check_digit(cpf);
  cpf += cpf_check_digit(cpf);
  return cpf;
}

std::string make_cnpj(Rng& rng, bool alphanumeric) {
  std::string cnpj;
  if (alphanumeric) {
    do {
      cnpj = random_chars(rng, kAlphanumerics, 12);
    } while (!has_letter(cnpj));  // one in five million draws is all digits: not what was asked
  } else {
    do {
      cnpj = random_chars(rng, kDigits, 8);
    } while (all_same(cnpj));
    // Most companies hold their key on the head office (branch 0001).
    const std::uint64_t branch = chance(rng, 0.75) ? 1 : 2 + uniform_below(rng, 48);
    const std::string digits = std::to_string(branch);
    cnpj += std::string(4 - digits.size(), '0') + digits;
  }
  cnpj += cnpj_check_digit(cnpj);
  cnpj += cnpj_check_digit(cnpj);
  return cnpj;
}

std::string make_phone(Rng& rng) {
  // Mobile subscriber numbers are 9 and then 8 digits, the first of them 6-9 in practice.
  return "+55" + std::string(pick(rng, kAreaCodes)) + "9" + pick(rng, "6789") + random_chars(rng, kDigits, 7);
}

std::string make_email(Rng& rng) {
  return email_local_part(rng) + "@" + std::string(pick(rng, kMailDomains));
}

std::string make_evp(Rng& rng) {
  std::string hex = random_chars(rng, kHex, 32);
  hex[12] = '4';                              // version 4: random
  hex[16] = kHex[8 + uniform_below(rng, 4)];  // variant 10xx: RFC 4122
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20);
}

std::string make_key(Rng& rng, domain::KeyType type) {
  switch (type) {
    case domain::KeyType::kCpf:
      return make_cpf(rng);
    case domain::KeyType::kCnpj:
      return make_cnpj(rng, chance(rng, 0.5));
    case domain::KeyType::kPhone:
      return make_phone(rng);
    case domain::KeyType::kEmail:
      return make_email(rng);
    case domain::KeyType::kEvp:
      return make_evp(rng);
  }
  return make_evp(rng);
}

std::string make_invalid_key(Rng& rng, InvalidKeyKind kind) {
  switch (kind) {
    case InvalidKeyKind::kCpfCheckDigit: {
      std::string cpf = make_cpf(rng);
      cpf.back() = other_digit(rng, cpf.back());
      return cpf;
    }
    case InvalidKeyKind::kCpfRepeated:
      return std::string(11, pick(rng, kDigits));
    case InvalidKeyKind::kCnpjCheckDigit: {
      std::string cnpj = make_cnpj(rng, chance(rng, 0.5));
      cnpj.back() = other_digit(rng, cnpj.back());
      return cnpj;
    }
    case InvalidKeyKind::kCnpjLowercase:
      return lowercase(make_cnpj(rng, true));
    case InvalidKeyKind::kPhoneLandline:
      // A landline: 8 digits starting 2-5, no leading 9.
      return "+55" + std::string(pick(rng, kAreaCodes)) + pick(rng, "2345") + random_chars(rng, kDigits, 7);
    case InvalidKeyKind::kPhoneWithoutPlus:
      return make_phone(rng).substr(1);
    case InvalidKeyKind::kEmailUppercase: {
      std::string email = make_email(rng);
      email.front() = static_cast<char>(email.front() - 'a' + 'A');  // names start with a letter
      return email;
    }
    case InvalidKeyKind::kEmailNoDomainDot:
      return email_local_part(rng) + "@localhost";
    case InvalidKeyKind::kEmailTooLong: {
      // 78 to 82 characters, each part within its own limit: only the total is wrong.
      constexpr std::string_view kLongDomain = "empresa-de-pagamentos-instantaneos-do-brasil.com.br";
      std::string local = email_local_part(rng) + ".";
      const std::size_t total = domain::kMaxKeyLength + 1 + uniform_below(rng, 5);
      local += random_chars(rng, "abcdefghijklmnopqrstuvwxyz", total - 1 - kLongDomain.size() - local.size());
      return local + "@" + std::string(kLongDomain);
    }
    case InvalidKeyKind::kEvpUppercase: {
      std::string evp = uppercase(make_evp(rng));
      // A UUID of digits only has no case: make sure a letter is there to be wrong.
      if (!has_letter(std::string_view(evp).substr(0, 8))) evp[0] = 'A';
      return evp;
    }
    case InvalidKeyKind::kEvpMalformed:
      return make_evp(rng).erase(uniform_below(rng, 8), 1);
  }
  return {};
}

std::string make_invalid_key(Rng& rng) {
  return make_invalid_key(rng, static_cast<InvalidKeyKind>(uniform_below(rng, kInvalidKeyKinds)));
}

}  // namespace pix::sim
