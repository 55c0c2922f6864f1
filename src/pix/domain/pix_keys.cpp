#include "pix/domain/pix_keys.hpp"

#include <algorithm>
#include <array>

namespace pix::domain {
namespace {

constexpr std::size_t kCpfLength = 11;
constexpr std::size_t kCnpjLength = 14;
constexpr std::size_t kUuidLength = 36;
// The punctuated forms; '#' stands for a character of the key itself.
constexpr std::string_view kCpfMask = "###.###.###-##";
constexpr std::string_view kCnpjMask = "##.###.###/####-##";

constexpr bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}
constexpr bool is_upper(char c) noexcept {
  return c >= 'A' && c <= 'Z';
}
constexpr bool is_lower(char c) noexcept {
  return c >= 'a' && c <= 'z';
}
constexpr bool is_lower_hex(char c) noexcept {
  return is_digit(c) || (c >= 'a' && c <= 'f');
}
constexpr bool is_alnum(char c) noexcept {
  return is_digit(c) || is_upper(c) || is_lower(c);
}

constexpr bool all_of(std::string_view s, bool (*pred)(char) noexcept) noexcept {
  return std::all_of(s.begin(), s.end(), pred);
}

constexpr bool all_same(std::string_view s) noexcept {
  return s.find_first_not_of(s.front()) == std::string_view::npos;
}

// The bare characters of a key, when it is exactly `N` of them or fits `mask` with the
// punctuation in place; nullopt otherwise. What the characters are is checked by the caller.
template <std::size_t N>
struct Bare {
  std::array<char, N> chars{};

  std::string_view view() const noexcept { return {chars.data(), N}; }
};

template <std::size_t N>
std::optional<Bare<N>> unmask(std::string_view key, std::string_view mask) noexcept {
  Bare<N> out;
  if (key.size() == N) {
    std::copy(key.begin(), key.end(), out.chars.begin());
    return out;
  }
  if (key.size() != mask.size()) return std::nullopt;
  std::size_t n = 0;
  for (std::size_t i = 0; i < mask.size(); ++i) {
    if (mask[i] == '#') {
      // A punctuation character where a key character belongs means another shape.
      if (!is_alnum(key[i])) return std::nullopt;
      out.chars[n++] = key[i];
    } else if (key[i] != mask[i]) {
      return std::nullopt;
    }
  }
  return out;
}

// CPF check digit over `digits` with weights len+1 .. 2.
int cpf_check_digit(std::string_view digits) noexcept {
  int sum = 0;
  int weight = static_cast<int>(digits.size()) + 1;
  for (char c : digits) sum += (c - '0') * weight--;
  return (sum * 10 % 11) % 10;
}

// CNPJ check digit: the value of a character is its ASCII code - 48, so the same formula serves
// the numeric CNPJ and the alphanumeric one (A = 17 ... Z = 42). Weights cycle 2..9 from the right.
int cnpj_check_digit(std::string_view chars) noexcept {
  int sum = 0;
  int weight = 2;
  for (auto it = chars.rbegin(); it != chars.rend(); ++it) {
    sum += (*it - '0') * weight;
    weight = weight == 9 ? 2 : weight + 1;
  }
  const int r = sum % 11;
  return r < 2 ? 0 : 11 - r;
}

// Each *_problem() returns "" for a valid key, else why it is not valid.

std::string_view cpf_problem(std::string_view key) noexcept {
  const auto bare = unmask<kCpfLength>(key, kCpfMask);
  if (!bare || !all_of(bare->view(), is_digit)) return "cpf must be 11 digits, optionally as 000.000.000-00";
  const std::string_view d = bare->view();
  if (all_same(d)) return "cpf cannot be 11 identical digits";
  if (cpf_check_digit(d.substr(0, 9)) != d[9] - '0' || cpf_check_digit(d.substr(0, 10)) != d[10] - '0') {
    return "cpf check digits do not match";
  }
  return {};
}

std::string_view cnpj_problem(std::string_view key) noexcept {
  const auto bare = unmask<kCnpjLength>(key, kCnpjMask);
  if (!bare || !all_of(bare->view(), is_alnum)) {
    return "cnpj must be 12 characters [0-9A-Z] and 2 check digits, optionally as 00.000.000/0000-00";
  }
  const std::string_view c = bare->view();
  if (std::any_of(c.begin(), c.end(), is_lower)) return "cnpj letters must be uppercase";
  if (!is_digit(c[12]) || !is_digit(c[13])) return "cnpj check digits must be numeric";
  if (all_same(c)) return "cnpj cannot be 14 identical characters";
  if (cnpj_check_digit(c.substr(0, 12)) != c[12] - '0' || cnpj_check_digit(c.substr(0, 13)) != c[13] - '0') {
    return "cnpj check digits do not match";
  }
  return {};
}

std::string_view phone_problem(std::string_view key) noexcept {
  // E.164 as the DICT writes it: ^\+[1-9][0-9]\d{1,14}$, i.e. 3 to 16 digits after the '+'.
  if (key.empty() || key.front() != '+') return "phone must start with + and the country code";
  const std::string_view digits = key.substr(1);
  if (digits.size() < 3 || digits.size() > 16 || !all_of(digits, is_digit) || digits.front() == '0') {
    return "phone must be E.164: + and 3 to 16 digits, not starting with 0";
  }
  // Brazil (+55): only mobiles hold keys, ^\+55[1-9]{2}9\d{8}$. No other country code starts with
  // 55 (E.164 codes are prefix-free), so this cannot misjudge a foreign number.
  if (digits.substr(0, 2) == "55") {
    if (digits.size() != 13 || digits[2] == '0' || digits[3] == '0' || digits[4] != '9') {
      return "brazilian phone must be a mobile: +55, 2-digit area code, 9 and 8 digits";
    }
  }
  return {};
}

bool is_email_local_char(char c) noexcept {
  return is_lower(c) || is_digit(c) || std::string_view("!#$%&'*+/=?^_`{|}~.-").find(c) != std::string_view::npos;
}

std::string_view email_problem(std::string_view key) noexcept {
  if (key.size() > kMaxKeyLength) return "e-mail must be at most 77 characters";
  if (std::any_of(key.begin(), key.end(), is_upper)) return "e-mail must be lowercase";
  const auto at = key.find('@');
  if (at == std::string_view::npos || key.find('@', at + 1) != std::string_view::npos) {
    return "e-mail must have exactly one @";
  }
  const std::string_view local = key.substr(0, at);
  const std::string_view domain = key.substr(at + 1);
  if (local.empty()) return "e-mail has nothing before the @";
  if (local.size() > 64) return "e-mail part before the @ must be at most 64 characters";
  if (!std::all_of(local.begin(), local.end(), is_email_local_char)) {
    return "e-mail has a character that is not allowed before the @";
  }
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos) {
    return "e-mail has a misplaced dot before the @";
  }
  if (domain.find('.') == std::string_view::npos) return "e-mail domain must have a dot, as in example.com";
  // Labels: [a-z0-9-]+, not starting or ending with '-'.
  std::size_t start = 0;
  while (start <= domain.size()) {
    auto end = domain.find('.', start);
    if (end == std::string_view::npos) end = domain.size();
    const std::string_view label = domain.substr(start, end - start);
    if (label.empty()) return "e-mail domain has an empty label";
    if (label.front() == '-' || label.back() == '-' ||
        !std::all_of(label.begin(), label.end(), [](char c) { return is_lower(c) || is_digit(c) || c == '-'; })) {
      return "e-mail domain has a character that is not allowed";
    }
    start = end + 1;
  }
  return {};
}

constexpr bool is_uuid_hyphen_position(std::size_t i) noexcept {
  return i == 8 || i == 13 || i == 18 || i == 23;
}

bool has_uuid_shape(std::string_view key) noexcept {
  if (key.size() != kUuidLength) return false;
  for (std::size_t i = 0; i < key.size(); ++i) {
    if ((key[i] == '-') != is_uuid_hyphen_position(i)) return false;
  }
  return true;
}

std::string_view evp_problem(std::string_view key) noexcept {
  if (!has_uuid_shape(key)) return "evp must be a uuid: 8-4-4-4-12 hex digits";
  for (std::size_t i = 0; i < key.size(); ++i) {
    if (!is_uuid_hyphen_position(i) && !is_lower_hex(key[i])) return "evp must be a lowercase uuid";
  }
  return {};
}

std::string_view problem(KeyType type, std::string_view key) noexcept {
  switch (type) {
    case KeyType::kCpf:
      return cpf_problem(key);
    case KeyType::kCnpj:
      return cnpj_problem(key);
    case KeyType::kPhone:
      return phone_problem(key);
    case KeyType::kEmail:
      return email_problem(key);
    case KeyType::kEvp:
      return evp_problem(key);
  }
  return "unknown key type";
}

// The type a key claims to be by its shape alone. Lowercase letters still make a CNPJ shape, so
// that the error can say the letters must be uppercase rather than "not a key".
std::optional<KeyType> shape_of(std::string_view key) noexcept {
  if (key.empty()) return std::nullopt;
  if (key.front() == '+') return KeyType::kPhone;
  if (key.find('@') != std::string_view::npos) return KeyType::kEmail;
  if (has_uuid_shape(key)) return KeyType::kEvp;
  if (const auto cpf = unmask<kCpfLength>(key, kCpfMask); cpf && all_of(cpf->view(), is_digit)) return KeyType::kCpf;
  if (const auto cnpj = unmask<kCnpjLength>(key, kCnpjMask); cnpj && all_of(cnpj->view(), is_alnum)) {
    return KeyType::kCnpj;
  }
  return std::nullopt;
}

}  // namespace

std::string_view to_string(KeyType type) noexcept {
  switch (type) {
    case KeyType::kCpf:
      return "cpf";
    case KeyType::kCnpj:
      return "cnpj";
    case KeyType::kPhone:
      return "phone";
    case KeyType::kEmail:
      return "email";
    case KeyType::kEvp:
      return "evp";
  }
  return "unknown";
}

bool is_valid_cpf(std::string_view key) noexcept {
  return cpf_problem(key).empty();
}
bool is_valid_cnpj(std::string_view key) noexcept {
  return cnpj_problem(key).empty();
}
bool is_valid_phone(std::string_view key) noexcept {
  return phone_problem(key).empty();
}
bool is_valid_email(std::string_view key) noexcept {
  return email_problem(key).empty();
}
bool is_valid_evp(std::string_view key) noexcept {
  return evp_problem(key).empty();
}

std::optional<KeyType> detect_key_type(std::string_view key) noexcept {
  if (key.size() > kMaxKeyLength) return std::nullopt;
  const auto type = shape_of(key);
  if (!type || !problem(*type, key).empty()) return std::nullopt;
  return type;
}

KeyCheck check_key(std::string_view key, std::optional<KeyType> declared) {
  KeyCheck out;
  if (key.empty()) {
    out.error = "key is empty";
    return out;
  }
  if (key.size() > kMaxKeyLength) {
    out.error = "key is longer than 77 characters";
    return out;
  }
  const auto type = declared ? declared : shape_of(key);
  if (!type) {
    out.error = "key is not a cpf, cnpj, phone (+...), e-mail or evp";
    return out;
  }
  if (const auto why = problem(*type, key); !why.empty()) {
    out.error = std::string(why);
    return out;
  }
  out.type = type;
  return out;
}

std::string canonical_key(std::string_view key) {
  const auto type = detect_key_type(key);
  if (type == KeyType::kCpf) return std::string(unmask<kCpfLength>(key, kCpfMask)->view());
  if (type == KeyType::kCnpj) return std::string(unmask<kCnpjLength>(key, kCnpjMask)->view());
  return std::string(key);
}

}  // namespace pix::domain
